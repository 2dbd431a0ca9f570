// POST /v1/import: translates Istio, SMI and Gateway API manifests (YAML or JSON in the body, one
// or more documents) into a policy document merged into the mesh's active policy, and answers
// { document, ignored, errors, warnings, imported, baseVersion }. It applies nothing unless asked:
// with ?apply=true a clean import is applied like POST /v1/policy, refused (409) when the active
// version is no longer the one it was merged into (or the one If-Match names).
//   ?base=active (default) merges into the active policy; ?base=none starts from an empty one
//   ?serviceAccount=<[namespace/]sa>=<caller> (repeatable) maps SMI ServiceAccounts to callers
//   ?mesh=<name> as everywhere in the admin API
import { Hono, type Context, type Env } from "hono";
import { importManifests } from "../../policies/import/index.ts";
import { readBody } from "./common.ts";

/** Largest body accepted: manifests are text, and a mesh's routing config is far smaller. */
export const MAX_IMPORT_BODY_BYTES = 1024 * 1024;

type ApplyAnswer =
  | { ok: true; version: number; generation: number }
  | { ok: false; reason: "invalid"; errors: { path: string; message: string }[] }
  | { ok: false; reason: "conflict"; currentVersion: number; message: string }
  | { ok: false; reason: string; message: string };

/** What the import routes need of the control plane. */
export interface ImportControl {
  getPolicy(): Promise<{ version: number; document: unknown } | null>;
  apply(mesh: string, document: unknown, options: { expectedVersion?: number; author?: string; message?: string }): Promise<ApplyAnswer>;
}

export interface ImportRouteDeps<E extends Env> {
  control(c: Context<E>): ImportControl;
  meshName(c: Context<E>): string;
}

/** The admin token check is the parent app's (`/v1/*`); mount with `app.route("/v1/import", importRoutes(…))`. */
export function importRoutes<E extends Env>(deps: ImportRouteDeps<E>): Hono<E> {
  const app = new Hono<E>();
  app.post("/", async (c) => {
    // Refused by Content-Length, or as soon as a streamed body passes the limit: never read whole first.
    const body = await readBody(c, MAX_IMPORT_BODY_BYTES);
    if (!body.ok) return body.response;
    const text = body.text;
    if (text.trim() === "") return c.json({ error: "send the manifests (YAML or JSON, one or more documents) as the body" }, 400);

    const baseMode = c.req.query("base") ?? "active";
    if (baseMode !== "active" && baseMode !== "none") return c.json({ error: `?base must be "active" (merge into the active policy, the default) or "none", got "${baseMode}"` }, 400);
    const applyMode = c.req.query("apply");
    if (applyMode !== undefined && applyMode !== "true" && applyMode !== "false") return c.json({ error: `?apply must be true or false, got "${applyMode}"` }, 400);

    const serviceAccounts: Record<string, string> = {};
    for (const entry of c.req.queries("serviceAccount") ?? []) {
      const eq = entry.indexOf("=");
      if (eq <= 0 || eq === entry.length - 1) return c.json({ error: `?serviceAccount must be [namespace/]serviceaccount=name, e.g. monitoring/prometheus=prometheus, got "${entry}"` }, 400);
      serviceAccounts[entry.slice(0, eq)] = entry.slice(eq + 1);
    }

    const mesh = deps.meshName(c);
    const stub = deps.control(c);
    const active = baseMode === "active" ? await stub.getPolicy() : null;
    const baseVersion = active?.version ?? 0;
    const result = importManifests([{ name: "body", text }], { mesh, serviceAccounts, ...(active ? { base: active.document } : {}) });
    const answer = { ...result, baseVersion };
    if (result.errors.length > 0) return c.json({ error: "the import has errors; nothing was applied", ...answer }, 400);
    if (applyMode !== "true") return c.json(answer);

    const ifMatch = c.req.header("if-match");
    let expectedVersion: number | undefined = baseMode === "active" ? baseVersion : undefined;
    if (ifMatch !== undefined && ifMatch.trim() !== "*") {
      const m = /^(?:W\/)?"?(\d+)"?$/.exec(ifMatch.trim());
      if (!m) return c.json({ error: 'If-Match must be a policy version such as "3" (or * for any)' }, 400);
      expectedVersion = Number(m[1]);
    }
    const applied = await stub.apply(mesh, result.document, {
      ...(expectedVersion !== undefined ? { expectedVersion } : {}),
      message: c.req.header("x-edgemesh-message") ?? `import: ${result.imported.join(", ") || "(no resources)"}`,
    });
    if (applied.ok) return c.json({ ...answer, applied: { version: applied.version, generation: applied.generation } }, 201, { etag: `"${applied.version}"` });
    if (applied.reason === "conflict" && "currentVersion" in applied) {
      return c.json({ error: `${applied.message}; import again to merge into it`, currentVersion: applied.currentVersion, ...answer }, 409, { etag: `"${applied.currentVersion}"` });
    }
    if (applied.reason === "invalid" && "errors" in applied) return c.json({ error: "policy rejected; the active policy is unchanged", ...answer, errors: applied.errors }, 400);
    // A service's rollout holds the traffic the import would change (docs/rollouts.md).
    if (applied.reason === "rollout" && "message" in applied) return c.json({ error: `policy refused; the active policy is unchanged: ${applied.message}`, ...answer }, 409);
    return c.json({ error: "message" in applied ? applied.message : "apply failed", ...answer }, 404);
  });
  return app;
}
