// Operating a rollout in the real runtime: pause, resume, promote and abort through the CLI and the
// API, and what a manual policy apply during a rollout does (refused with 409 when it would change
// what the rollout holds; anything else goes through). Intervals are long here, so the rollout
// moves only when the test says so.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { adminJson, eventually } from "../control-helpers.ts";
import { apiService, document, startRolloutMesh, type RolloutMesh } from "./rollout-helpers.ts";

const run = promisify(execFile);

let m: RolloutMesh | undefined;
afterEach(async () => {
  await m?.dispose();
  m = undefined;
});

/** Runs the CLI with the bootstrap token, or with the admin token whose value is `token`. */
async function cliAs(token: string | undefined, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, "bin/edgemesh.mjs"), ...args], {
      cwd: ROOT,
      env: { ...process.env, EDGEMESH_URL: m!.mesh.controlUrl.origin, EDGEMESH_ADMIN_TOKEN: token ?? m!.mesh.adminToken },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const cli = (...args: string[]) => cliAs(undefined, ...args);

/** An admin token of scope write named `name`: who acts is the token, never a header or flag. */
async function tokenNamed(name: string): Promise<string> {
  const created = await cli("tokens", "create", name, "--scope", "write");
  expect(created.code, created.stderr).toBe(0);
  return created.stdout.trim();
}

/** A rollout that checks once a minute: it starts at once, then moves only when told. */
const SLOW = { steps: [20, 50, 100], intervalMs: 60_000, progressDeadlineMs: 600_000 };

async function progressing(mesh: RolloutMesh): Promise<any> {
  return eventually(() => mesh.rollout(), (r) => r.state === "progressing", 20_000, 100);
}

const activeDocument = async (mesh: RolloutMesh) => (await adminJson(mesh.mesh, "/v1/policy")).body;

describe("rollout controls", () => {
  it("pauses, resumes, promotes and aborts through the CLI and the API, and refuses actions that do not apply", async () => {
    m = await startRolloutMesh();
    expect((await m.apply(document(apiService(SLOW)))).status).toBe(201);
    await progressing(m);

    const status = await cli("rollout", "status", "api");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^api {2}PROGRESSING {2}step 1 of 3 \(20, 50, 100\)$/m);
    expect(status.stdout).toMatch(/traffic: canary 20% {2}stable 80% {2}on route main/);

    const carol = await tokenNamed("carol");
    const paused = await cliAs(carol, "rollout", "pause", "api");
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/^api {2}PAUSED/m);
    expect(await m.rollout()).toMatchObject({ state: "paused", nextCheckAtMs: null, canaryWeight: 20, reason: 'paused by carol at 20% for "canary"' });
    const again = await cli("rollout", "pause", "api");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is already paused .*\(HTTP 409\)/);

    const resumed = await cliAs(carol, "rollout", "resume", "api");
    expect(resumed.code, resumed.stderr).toBe(0);
    const afterResume = await m.rollout();
    expect(afterResume).toMatchObject({ state: "progressing", step: 0, canaryWeight: 20 });
    expect(afterResume.nextCheckAtMs).toBeGreaterThan(Date.now());

    const promoted = await cliAs(carol, "rollout", "promote", "api");
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(/^api {2}PROMOTED/m);
    const history = await m.history();
    expect(history[0]).toMatchObject({ author: "rollout:api", message: expect.stringMatching(/promoted by carol at progressing, step 1 of 3/) });
    const promotedDoc = await activeDocument(m);
    expect(promotedDoc.document.services.api.routes[0].to).toEqual([{ subset: "stable", weight: 0 }, { subset: "canary", weight: 100 }]);
    const after = await eventually(() => m!.burst(30), (t) => t.endpoints["api-stable"] === undefined, 10_000, 100);
    expect(after.endpoints).toEqual({ "api-canary": 30 });
    const ended = await cli("rollout", "abort", "api");
    expect(ended.code).toBe(1);
    expect(ended.stderr).toMatch(/already ended \(promoted: promoted by carol/);

    // The events name who did what.
    const events = await m.events("rollout.paused,rollout.resumed,rollout.promoted");
    expect(events.map((e: any) => `${e.type} ${e.data.by}`)).toEqual(["rollout.paused carol", "rollout.resumed carol", "rollout.promoted carol"]);
    expect(events[2].data.version).toBe(history[0].version);

    // Another rollout (the step list changed) starts afresh; abort sends everything back to stable.
    const next = apiService({ ...SLOW, steps: [10, 100] });
    expect((await m.apply(document(next))).status).toBe(201);
    await progressing(m);
    const aborted = await m.act("abort", "dave");
    expect(aborted.status).toBe(200);
    expect(aborted.body.rollout).toMatchObject({ state: "rolled-back", canaryWeight: 0, stableWeight: 100 });
    expect(aborted.body.rollout.reason).toMatch(/^aborted by dave at progressing, step 1 of 2; traffic went back to "stable"$/);
    const back = await eventually(() => m!.burst(30), (t) => t.endpoints["api-canary"] === undefined, 10_000, 100);
    expect(back.endpoints).toEqual({ "api-stable": 30 });

    // The list, an unknown service, an unknown action.
    const list = await adminJson(m.mesh, "/v1/rollouts");
    expect(list.body.rollouts.map((r: any) => `${r.service} ${r.state}`)).toEqual(["api rolled-back"]);
    expect((await adminJson(m.mesh, "/v1/rollouts/nope")).status).toBe(404);
    expect((await adminJson(m.mesh, "/v1/rollouts/nope/pause", { method: "POST" })).status).toBe(404);
    const unknown = await adminJson(m.mesh, "/v1/rollouts/api/skip", { method: "POST" });
    expect(unknown).toMatchObject({ status: 404, body: { error: 'unknown rollout action "skip"; actions: pause, resume, promote, abort' } });
    const listed = await cli("rollout", "status");
    expect(listed.stdout).toMatch(/^api {2}ROLLED-BACK/m);
  }, 120_000);

  it("refuses a manual apply that would change what a rollout holds (409 naming it), lets anything else through, and guards the weights a finished rollout left", async () => {
    m = await startRolloutMesh();
    const original = document(apiService(SLOW, { snapshotTtlMs: 500 }));
    const first = await m.apply(original);
    expect(first.status).toBe(201);
    await progressing(m);
    const active = await activeDocument(m);
    expect(active.version).toBe(2);

    // The operator's file again: it sends everything to stable, the rollout holds 20% on the canary.
    const stale = await m.apply(original);
    expect(stale.status).toBe(409);
    expect(stale.body.rollout).toBe("api");
    expect(stale.body.error).toBe(
      'policy refused; the active policy is unchanged: the rollout of "api" (progressing, step 1 of 3, "canary" at 20%) owns the traffic of its routes while it runs: ' +
        'route "main" would send stable 100, canary 0 instead of stable 80, canary 20. Keep them as the active policy has them (GET /v1/policy), or pause, promote or abort the rollout first',
    );
    // Removing the rollout, or rolling back to before it, is refused the same way.
    const removed = await m.apply(document(apiService(null)));
    expect(removed.status).toBe(409);
    expect(removed.body.error).toMatch(/is in progress and this document removes its rollout; abort it first \(edgemesh rollout abort api\)/);
    const rollback = await adminJson(m.mesh, "/v1/policy/rollback?to=1", { method: "POST" });
    expect(rollback.status).toBe(409);
    expect((await activeDocument(m)).version).toBe(2);

    // The active document with another change to the service goes through; the rollout goes on.
    const edited = structuredClone(active.document);
    edited.services.api.routes[0].timeoutMs = 4_000;
    const ok = await m.apply(edited);
    expect(ok.status).toBe(201);
    expect(await m.rollout()).toMatchObject({ state: "progressing", canaryWeight: 20 });

    // After it ends, the same rollout in a document owns the weights it left...
    expect((await m.act("promote")).status).toBe(200);
    const afterEnd = await m.apply(original);
    expect(afterEnd.status).toBe(409);
    expect(afterEnd.body.error).toMatch(/the rollout of "api" \(ended promoted, "canary" at 100%\) left its routes as the active policy has them, and this document declares the same rollout: route "main" would send stable 100, canary 0 instead of stable 0, canary 100\. Write the weights it left, remove the rollout block/);
    // ...until the rollout block goes: then the weights are the operator's again, and the run is forgotten.
    const mine = await m.apply(document(apiService(null, { routes: [{ name: "main", to: [{ subset: "stable", weight: 0 }, { subset: "canary", weight: 100 }] }] })));
    expect(mine.status).toBe(201);
    expect((await adminJson(m.mesh, "/v1/rollouts/api")).status).toBe(404);
  }, 120_000);
});
