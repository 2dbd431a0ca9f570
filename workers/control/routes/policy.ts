// Policy routes: the active document, versions, history, diff, validate, apply and rollback.
import { Hono } from "hono";
import type { ApplyResult } from "../../../durable/mesh-control.ts";
import { policyJsonSchema, validatePolicy } from "../../../policies/schema.ts";
import { principalOf } from "../admin-auth.ts";
import { applyDocument, rollbackTo } from "../apply.ts";
import {
  badIfMatch, badLimit, control, expectedVersion, integerParam, limitParam, MAX_POLICY_BYTES, meshName, readJson, type ControlBindings, type Ctx,
} from "../common.ts";

export const policyRoutes = new Hono<ControlBindings>();

function applyResponse(c: Ctx, result: ApplyResult): Response {
  if (result.ok) return c.json(result, 201, { etag: `"${result.version}"` });
  if (result.reason === "invalid") return c.json({ error: "policy rejected; the active policy is unchanged", errors: result.errors }, 400);
  if (result.reason === "conflict") return c.json({ error: result.message, currentVersion: result.currentVersion }, 409, { etag: `"${result.currentVersion}"` });
  if (result.reason === "rollout") return c.json({ error: `policy refused; the active policy is unchanged: ${result.message}`, rollout: result.service }, 409);
  return c.json({ error: result.message }, 404);
}

policyRoutes.get("/v1/schema", (c) => c.json(policyJsonSchema() as object));

policyRoutes.get("/v1/policy", async (c) => {
  const stub = control(c);
  const policy = await stub.getPolicy();
  if (!policy) {
    const loadError = await stub.policyLoadError();
    if (loadError) return c.json({ error: loadError.message, loadError }, 500);
    return c.json({ error: `mesh "${meshName(c)}" has no policy yet; apply one with POST /v1/policy` }, 404);
  }
  return c.json(policy, 200, { etag: `"${policy.version}"` });
});

policyRoutes.get("/v1/policy/history", async (c) => {
  const limit = limitParam(c);
  if (limit === "bad") return badLimit(c);
  return c.json(await control(c).history(limit ?? 50));
});

policyRoutes.get("/v1/policy/diff", async (c) => {
  const from = integerParam(c, "from");
  const toParam = integerParam(c, "to");
  if (from === undefined || from === "bad" || toParam === "bad") return c.json({ error: "give ?from=<version>&to=<version> (to defaults to the active one)" }, 400);
  const stub = control(c);
  const to = toParam ?? (await stub.activeVersion());
  const result = await stub.diff(from, to);
  return "changes" in result ? c.json({ from, to, changes: result.changes }) : c.json({ error: result.message }, 404);
});

policyRoutes.get("/v1/policy/:version{[0-9]{1,15}}", async (c) => {
  const policy = await control(c).getPolicy(Number(c.req.param("version")));
  return policy ? c.json(policy) : c.json({ error: `there is no policy version ${c.req.param("version")}` }, 404);
});

policyRoutes.post("/v1/policy/validate", async (c) => {
  const body = await readJson(c, MAX_POLICY_BYTES);
  if (!body.ok) return body.response;
  const result = validatePolicy(body.value);
  return result.ok ? c.json({ ok: true, errors: [] }) : c.json({ ok: false, errors: result.errors }, 400);
});

policyRoutes.post("/v1/policy", async (c) => {
  const expected = expectedVersion(c);
  if (expected === "bad") return badIfMatch(c);
  const body = await readJson(c, MAX_POLICY_BYTES);
  if (!body.ok) return body.response;
  const result = await applyDocument(control(c), meshName(c), body.value, {
    kind: "apply",
    expectedVersion: expected,
    // Who applied it is the token's name, never a header the client chose.
    author: principalOf(c).name,
    message: c.req.header("x-edgemesh-message") ?? "",
  });
  return applyResponse(c, result);
});

policyRoutes.post("/v1/policy/rollback", async (c) => {
  const expected = expectedVersion(c);
  if (expected === "bad") return badIfMatch(c);
  const to = integerParam(c, "to");
  if (to === "bad") return c.json({ error: "?to must be a policy version number" }, 400);
  const result = await rollbackTo(control(c), meshName(c), to, { expectedVersion: expected, author: principalOf(c).name });
  return applyResponse(c, result);
});
