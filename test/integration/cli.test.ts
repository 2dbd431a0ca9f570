// The `edgemesh` CLI and `npm start` as a user runs them: real processes against a real mesh.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { BOOKINFO, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { bookinfoPolicy, sleep } from "../helpers.ts";

const run = promisify(execFile);
let mesh: RunningMesh;
let dir: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, "bin/edgemesh.mjs"), ...args], {
      cwd: ROOT,
      env: { ...process.env, EDGEMESH_URL: mesh.controlUrl.origin, EDGEMESH_ADMIN_TOKEN: mesh.adminToken },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-cli-"));
  mesh = await startMesh({ topology: BOOKINFO, adminToken: "cli-test-token" });
  const doc = await bookinfoPolicy();
  await writeFile(path.join(dir, "v1.json"), JSON.stringify(doc));
  doc.services.reviews.routes[1].to = [{ subset: "v2", weight: 1 }];
  await writeFile(path.join(dir, "v2.json"), JSON.stringify(doc));
  doc.services.reviews.routes[1].to = [{ subset: "v9", weight: 1 }];
  doc.services.reviews.routes[1].timeoutMs = -1;
  await writeFile(path.join(dir, "bad.json"), JSON.stringify(doc));
});

afterAll(async () => {
  await mesh?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("edgemesh CLI", () => {
  it("validates locally, listing every error with its path", async () => {
    const ok = await cli("validate", path.join(dir, "v1.json"));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/valid \(mesh "bookinfo", 4 services\)/);
    const bad = await cli("validate", path.join(dir, "bad.json"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("$.services.reviews.routes[1].to[0].subset: unknown subset \"v9\"");
    expect(bad.stderr).toContain("$.services.reviews.routes[1].timeoutMs");
  });

  it("imports Istio manifests offline, with the fields it ignored on stderr", async () => {
    const fixtures = path.join(ROOT, "test/fixtures/import");
    const out = await cli("import", path.join(fixtures, "istio-bookinfo.yaml"), "--base", path.join(fixtures, "base-bookinfo.json"));
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout).services.reviews.routes.map((r: { name: string }) => r.name)).toContain("jason");
    expect(out.stderr).toMatch(/ignored \d+ field\(s\)/);
    const usage = await cli("import");
    expect(usage.code).toBe(2);
  });

  it("applies with an expected version, refuses a stale one and a bad document", async () => {
    expect((await cli("apply", path.join(dir, "v1.json"), "--expect", "0")).stdout).toMatch(/as version 1/);
    const stale = await cli("apply", path.join(dir, "v2.json"), "--expect", "0");
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/expected version 0 but version 1 is active.*HTTP 409/);
    const bad = await cli("apply", path.join(dir, "bad.json"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/active policy is unchanged/);
    expect((await cli("apply", path.join(dir, "v2.json"), "--expect", "1", "--message", "all to v2")).stdout).toMatch(/as version 2/);
  });

  it("shows history and diff, and rolls back", async () => {
    const history = await cli("history");
    expect(history.stdout).toMatch(/^\* v2 .* apply {2}"all to v2"$/m);
    const diff = await cli("diff", "1", "2");
    expect(diff.stdout).toContain('~ $.services.reviews.routes[1].to[0].subset: "v1" -> "v2"');
    expect(diff.stdout).toContain("- $.services.reviews.routes[1].to[1]");
    const back = await cli("rollback", "--expect", "2");
    expect(back.stdout).toMatch(/version 3 is now active/);
    expect((await cli("history", "--limit", "1")).stdout).toMatch(/\* v3 .* rollback to 1/);
  });

  it("registers, heartbeats and deregisters an instance", async () => {
    const reg = await cli("register", "reviews", "reviews-extra", "--url", "http://127.0.0.1:9", "--label", "version=v1", "--lease-ms", "60000");
    expect(reg.code).toBe(0);
    expect(reg.stdout).toMatch(/registered reviews\/reviews-extra until/);
    expect((await cli("heartbeat", "reviews", "reviews-extra")).stdout).toMatch(/renewed/);
    expect(JSON.parse((await cli("registry")).stdout).services.reviews.map((e: { id: string }) => e.id)).toContain("reviews-extra");
    expect((await cli("deregister", "reviews", "reviews-extra")).code).toBe(0);
    expect((await cli("deregister", "reviews", "reviews-extra")).code).toBe(1);
    const events = await cli("events", "--types", "endpoint.registered,endpoint.deregistered");
    expect(events.stdout).toMatch(/endpoint\.registered .*reviews-extra/);
    expect(events.stdout).toMatch(/endpoint\.deregistered .*reviews-extra/);
  });

  it("answers whether a change is live everywhere", async () => {
    // jason's requests go to reviews v2, which calls ratings: every sidecar sees traffic and checks in.
    for (let i = 0; i < 3; i++) {
      await (await fetch(new URL("/api/v1/products/0?user=jason", mesh.url))).arrayBuffer();
      await sleep(1_100);
    }
    const sync = await cli("sync");
    expect(sync.stdout).toMatch(/live everywhere: yes/);
    expect(sync.stdout).toMatch(/synced +reviews/);
    expect(sync.code).toBe(0);
  });

  it("has a help page per command, and answers a usage error with exit code 2", async () => {
    const help = await cli("help", "register");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: edgemesh register \[options\] <service> <id>/);
    expect(help.stdout).toContain("--lease-ms <ms>");
    expect((await cli("stat", "--help")).stdout).toContain("--window <duration>");
    const top = await cli();
    expect(top.code).toBe(0);
    for (const command of ["status", "apply", "rollback", "sync", "watch", "stat", "top", "query"]) expect(top.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
    const unknown = await cli("frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const bad = await cli("history", "--limit", "lots");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit must be an integer, got "lots"/);
    expect((await cli("stat", "everything")).code).toBe(2);
  });

  it("shows golden metrics per service and edge, the busiest routes, and answers SQL", async () => {
    for (let i = 0; i < 4; i++) await (await fetch(new URL("/api/v1/products/0?user=jason", mesh.url))).arrayBuffer();
    // Rows reach the local store within a flush interval (1 s by default).
    let services = "";
    for (let tries = 0; tries < 50 && !/^ratings /m.test(services); tries++) {
      await sleep(200);
      services = (await cli("stat", "--window", "10m")).stdout;
    }
    expect(services.split("\n")[0]).toMatch(/^SERVICE +RPS +SUCCESS +P50_MS +P95_MS +P99_MS +RETRIES +SHEDS +REQUESTS$/);
    for (const service of ["productpage", "details", "reviews", "ratings"]) expect(services).toMatch(new RegExp(`^${service} +[\\d.]+ +100\\.00% `, "m"));
    const edges = await cli("stat", "edges", "--window", "10m");
    expect(edges.stdout).toMatch(/^productpage +reviews /m);
    expect(edges.stdout).toMatch(/^reviews +ratings /m);
    expect(edges.stdout).toMatch(/^external +productpage /m);

    const top = await cli("top", "--iterations", "1", "--window", "10m");
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^SERVICE +ROUTE +RPS/m);
    expect(top.stdout).toMatch(/^reviews +jason /m);
    expect(top.stdout).toMatch(/^SOURCE +DESTINATION +RPS/m);

    const query = await cli("query", "SELECT blob3 AS service, count() AS n FROM edgemesh_requests WHERE blob3 = 'ratings' GROUP BY service");
    expect(query.code).toBe(0);
    expect(query.stdout).toMatch(/^service +n$/m);
    expect(query.stdout).toMatch(/^ratings +\d+$/m);
    expect(query.stdout).toContain("(1 row)");
    const json = JSON.parse((await cli("query", "--json", "SELECT count() AS n FROM edgemesh_requests")).stdout);
    expect(Number(json.data[0].n)).toBeGreaterThan(0);
    const unsupported = await cli("query", "SELECT * FROM edgemesh_requests UNION ALL SELECT * FROM edgemesh_requests");
    expect(unsupported.code).toBe(1);
    expect(unsupported.stderr).toMatch(/construct: .*UNION/i);
    expect(unsupported.stderr).toContain("HTTP 400");
  });

  it("manages admin tokens and reads the audit log: a read token reads and cannot write", async () => {
    const created = await cli("tokens", "create", "cli-reader", "--scope", "read", "--ttl", "1d");
    expect(created.code).toBe(0);
    const value = created.stdout.trim();
    expect(value).toMatch(/^edgemesh_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain("shown this once");
    const list = await cli("tokens", "list");
    expect(list.stdout).toMatch(/^NAME +SCOPE +CREATED +BY +LAST_USED +EXPIRES$/m);
    expect(list.stdout).toMatch(/cli-reader +read +\S+ \S+ +bootstrap +never/);
    expect(list.stdout).not.toContain(value);
    const asReader = (...args: string[]) =>
      run(process.execPath, [path.join(ROOT, "bin/edgemesh.mjs"), ...args], { cwd: ROOT, env: { ...process.env, EDGEMESH_URL: mesh.controlUrl.origin, EDGEMESH_ADMIN_TOKEN: value } })
        .then(({ stdout }) => ({ code: 0, stdout, stderr: "" }), (e: { code: number; stdout: string; stderr: string }) => e);
    expect((await asReader("status")).code).toBe(0);
    const refused = await asReader("rollback");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/insufficient-scope.*HTTP 403/);
    expect((await cli("tokens", "revoke", "cli-reader")).stdout).toContain('revoked admin token "cli-reader"');
    expect((await asReader("status")).code).toBe(1);
    const audit = await cli("audit", "--limit", "5");
    expect(audit.stdout).toMatch(/^SEQ +WHEN +TOKEN +ACTION +TARGET +OUTCOME +MESH +CLIENT +DETAIL$/m);
    expect(audit.stdout).toMatch(/bootstrap +tokens\.revoke +cli-reader +ok/);
    expect(audit.stdout).toMatch(/cli-reader +policy\.rollback +- +refused/);
    expect((await cli("tokens", "create", "x", "--scope", "root")).code).toBe(2);
  });

  it("issues mesh tokens and debug credentials, and makes and reads key sets locally", async () => {
    const issued = await cli("token", "issue", "--as", "productpage", "--for", "reviews", "--ttl", "5m");
    expect(issued.code).toBe(0);
    const inspected = await cli("token", "inspect", issued.stdout.trim());
    expect(inspected.stdout).toContain("caller productpage -> callee reviews in mesh bookinfo");
    expect(inspected.stdout).toContain("the signature was not checked");
    const debugToken = (await cli("token", "debug", "--for", "reviews")).stdout.trim();
    const { sidecar } = await import("../helpers.ts");
    const reviews = await sidecar(mesh, "reviews");
    const res = await reviews("/reviews/0", { headers: { "x-edgemesh-debug": "1", "x-edgemesh-debug-token": debugToken } });
    await res.arrayBuffer();
    expect(res.headers.get("x-edgemesh-service")).toBe("reviews");

    const keys = await cli("token", "keygen", "--kid", "k-2026");
    const set = JSON.parse(keys.stdout);
    expect(set.keys).toEqual([expect.objectContaining({ kid: "k-2026", status: "signing", d: expect.any(String) })]);
    await writeFile(path.join(dir, "keys.json"), keys.stdout);
    const rotated = JSON.parse((await cli("token", "keygen", "--add-to", path.join(dir, "keys.json"))).stdout);
    expect(rotated.keys.map((k: { status: string }) => k.status)).toEqual(["signing", "verify"]);
    await writeFile(path.join(dir, "rotated.json"), JSON.stringify(rotated));
    const pub = JSON.parse((await cli("token", "public", path.join(dir, "rotated.json"))).stdout);
    expect(pub.keys).toHaveLength(2);
    expect(JSON.stringify(pub)).not.toContain('"d"');
    await writeFile(path.join(dir, "broken.json"), JSON.stringify({ keys: [{ ...set.keys[0], status: "maybe" }] }));
    const broken = await cli("token", "public", path.join(dir, "broken.json"));
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain("keys[0].status must be one of signing, verify, retired");
  });

  it("says clearly when the control plane cannot be reached", async () => {
    const { stderr, code } = await run(process.execPath, [path.join(ROOT, "bin/edgemesh.mjs"), "status"], {
      env: { ...process.env, EDGEMESH_URL: "http://127.0.0.1:9" },
    }).then(() => ({ stderr: "", code: 0 }), (e: { stderr: string; code: number }) => e);
    expect(code).toBe(2);
    expect(stderr).toMatch(/cannot reach the control plane at http:\/\/127\.0\.0\.1:9/);
  });
});

describe("npm start", () => {
  function start(stateDir: string): { child: ChildProcess; output: () => string; ready: Promise<{ app: string; control: string; greeter: string }> } {
    let out = "";
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts/start.ts")], {
      cwd: ROOT,
      env: { ...process.env, PORT: "0", CONTROL_PORT: "0", GRPC_PORT: "0", EDGEMESH_STATE_DIR: stateDir, EDGEMESH_TRAFFIC_MS: "100" },
    });
    const ready = new Promise<{ app: string; control: string; greeter: string }>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        const app = /app \(productpage via its sidecar\)\s+(\S+)/.exec(out)?.[1];
        const control = /control plane \(admin API\)\s+(\S+)/.exec(out)?.[1];
        const greeter = /gRPC greeter \(Connect, gRPC-Web\)\s+(\S+)/.exec(out)?.[1];
        if (app && control && greeter && /Ctrl-C stops the mesh/.test(out)) resolve({ app, control, greeter });
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
      child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
    });
    return { child, output: () => out, ready };
  }

  async function stop(child: ChildProcess): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    return exited;
  }

  it("serves the app and the control plane, stops on Ctrl-C, and finds its policy again", async () => {
    const stateDir = path.join(dir, "state");
    const first = start(stateDir);
    const startedMs = Date.now();
    const urls = await first.ready;
    expect(Date.now() - startedMs).toBeLessThan(15_000);
    expect(first.output()).toMatch(/applied policies\/bookinfo\.json,policies\/greeter\.json as version 1/);
    // It says how to get a debug credential, and never prints a key.
    expect(first.output()).toContain("x-edgemesh-debug-token: $(npx edgemesh token debug)");
    expect(first.output()).not.toMatch(/"d"|"x":/);
    const page = await fetch(urls.app);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("The Comedy of Errors");
    // The greeter answers a Connect call through its sidecar, as the printed curl does.
    const greeted = await fetch(new URL("/edgemesh.example.v1.GreeterService/Greet", urls.greeter), {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: JSON.stringify({ name: "you" }),
    });
    expect(greeted.status).toBe(200);
    expect(JSON.stringify(await greeted.json())).toContain("you");
    const policy = await fetch(new URL("/v1/policy", urls.control), { headers: { authorization: "Bearer edgemesh-local-admin-token" } });
    expect(((await policy.json()) as { version: number }).version).toBe(1);
    await sleep(500);
    await stop(first.child);
    expect(first.output()).toMatch(/SIGINT: stopping the mesh \(background traffic: \d+ requests, 0 failed\)/);

    const second = start(stateDir);
    await second.ready;
    expect(second.output()).toMatch(/found policy version 1 in .*state/);
    await stop(second.child);
  });
});
