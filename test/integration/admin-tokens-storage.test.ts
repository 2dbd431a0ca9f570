// The AdminTokens and AuditLog components on real Durable Object SQLite storage (Miniflare), behind the same
// brute-force throttle MeshControl will hold: values shown once and stored only as SHA-256,
// list without values, revocation at once, the bootstrap secret with scope admin, lockouts with
// a wait, expiry, lookups through the hash's index, and tokens that survive a restart of the
// runtime. Time is passed in by the test.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPATIBILITY_DATE } from "../../scripts/mesh.ts";
import { bundleTestWorker } from "./bundle-test-worker.ts";

const BOOTSTRAP = "bootstrap-secret-for-tests";
const T0 = Date.UTC(2026, 6, 1);
let persistRoot: string;
let script: Awaited<ReturnType<typeof bundleTestWorker>>;
let mf: Miniflare;

async function start(): Promise<Miniflare> {
  const instance = new Miniflare({
    ...script,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: { EDGEMESH_ADMIN_TOKEN: BOOTSTRAP },
    durableObjects: { HARNESS: { className: "AdminTokensHarness", useSQLite: true } },
    defaultPersistRoot: persistRoot,
  });
  await instance.ready;
  return instance;
}

async function rpc(method: string, ...args: unknown[]): Promise<any> {
  const res = await mf.dispatchFetch("http://harness.test/", { method: "POST", body: JSON.stringify({ method, args }) });
  expect(res.status).toBe(200);
  return res.json();
}

beforeAll(async () => {
  persistRoot = await mkdtemp(path.join(os.tmpdir(), "edgemesh-admin-tokens-"));
  script = await bundleTestWorker("test/workers/admin-tokens-harness.ts");
  mf = await start();
});

afterAll(async () => {
  await mf?.dispose();
  await rm(persistRoot, { recursive: true, force: true });
});

describe("admin tokens on Durable Object SQLite", () => {
  it("creates a token whose value is returned once and stored only as its SHA-256", async () => {
    const created = await rpc("create", "ci-deploy", "write", "bootstrap", null, T0);
    expect(created).toMatchObject({ ok: true, info: { name: "ci-deploy", scope: "write", createdBy: "bootstrap", createdAtMs: T0, lastUsedAtMs: null, expiresAtMs: null } });
    expect(created.token).toMatch(/^edgemesh_[A-Za-z0-9_-]{43}$/);
    const rows = await rpc("rawRows");
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(created.token);
    expect(JSON.stringify(rows)).not.toContain(created.token.slice("edgemesh_".length));
    expect(rows[0].token_sha256).toBe(createHash("sha256").update(created.token).digest("hex"));
    expect(await rpc("list", T0)).toEqual([{ name: "ci-deploy", scope: "write", createdAtMs: T0, createdBy: "bootstrap", lastUsedAtMs: null, expiresAtMs: null }]);
  });

  it("authenticates by value with its scope, records last use, and refuses wrong, revoked and missing tokens", async () => {
    const { token } = await rpc("create", "dashboard", "read", "bootstrap", null, T0);
    const lastUsed = async () => (await rpc("list", T0)).find((t: any) => t.name === "dashboard").lastUsedAtMs;
    expect(await rpc("authenticate", `Bearer ${token}`, "10.0.0.1", T0 + 1000)).toEqual({ ok: true, principal: { name: "dashboard", scope: "read" } });
    expect(await lastUsed()).toBe(T0 + 1000);
    await rpc("authenticate", `Bearer ${token}`, "10.0.0.1", T0 + 2000);
    expect(await lastUsed()).toBe(T0 + 1000); // written at most once a minute
    await rpc("authenticate", `Bearer ${token}`, "10.0.0.1", T0 + 61_000);
    expect(await lastUsed()).toBe(T0 + 61_000);
    expect(await rpc("authenticate", `Bearer ${token}x`, "10.0.0.1", T0)).toMatchObject({ ok: false, status: 401, reason: "unknown-token" });
    expect(await rpc("authenticate", null, "10.0.0.1", T0)).toMatchObject({ ok: false, status: 401, reason: "missing-token" });
    expect(await rpc("revoke", "dashboard")).toBe(true);
    expect(await rpc("revoke", "dashboard")).toBe(false);
    expect(await rpc("authenticate", `Bearer ${token}`, "10.0.0.1", T0)).toMatchObject({ ok: false, status: 401 });
  });

  it("the bootstrap secret authenticates with scope admin", async () => {
    expect(await rpc("authenticate", `Bearer ${BOOTSTRAP}`, "10.0.0.2", T0)).toEqual({ ok: true, principal: { name: "bootstrap", scope: "admin" } });
  });

  it("refuses duplicate, reserved and malformed names and unknown scopes", async () => {
    await rpc("create", "dup", "read", "bootstrap", null, T0);
    expect(await rpc("create", "dup", "admin", "bootstrap", null, T0)).toMatchObject({ ok: false, reason: "exists" });
    expect(await rpc("create", "bootstrap", "admin", "bootstrap", null, T0)).toMatchObject({ ok: false, reason: "invalid" });
    expect(await rpc("create", "Bad Name", "read", "bootstrap", null, T0)).toMatchObject({ ok: false, reason: "invalid" });
    expect(await rpc("create", "ok-name", "root", "bootstrap", null, T0)).toMatchObject({ ok: false, reason: "invalid", message: /scope must be one of read, write, admin/ });
  });

  it("slows a client down after repeated failures with a wait, even for a right token, but not other clients", async () => {
    const { token } = await rpc("create", "ops", "admin", "bootstrap", null, T0);
    for (let i = 0; i < 4; i++) expect(await rpc("authenticate", `Bearer guess-${i}`, "203.0.113.9", T0)).toMatchObject({ status: 401 });
    expect(await rpc("authenticate", `Bearer ${token}`, "203.0.113.9", T0 + 10_000)).toEqual({ ok: false, status: 429, reason: "too-many-failures", retryAfterMs: 50_000 });
    expect(await rpc("authenticate", `Bearer ${token}`, "198.51.100.1", T0 + 10_000)).toMatchObject({ ok: true });
    expect(await rpc("authenticate", `Bearer ${token}`, "203.0.113.9", T0 + 60_000)).toMatchObject({ ok: true });
  });

  it("a token with a lifetime stops working when it ends", async () => {
    const { token, info } = await rpc("create", "short", "read", "bootstrap", 60_000, T0);
    expect(info.expiresAtMs).toBe(T0 + 60_000);
    expect(await rpc("authenticate", `Bearer ${token}`, "10.0.0.4", T0 + 59_999)).toMatchObject({ ok: true });
    expect(await rpc("authenticate", `Bearer ${token}`, "10.0.0.4", T0 + 60_000)).toMatchObject({ ok: false, status: 401 });
    expect((await rpc("list", T0 + 60_000)).map((t: any) => t.name)).not.toContain("short");
  });

  it("finds a token through the hash's index, not by reading every token", async () => {
    for (let i = 0; i < 100; i++) await rpc("create", `bulk-${i}`, "read", "bootstrap", null, T0);
    const { token } = await rpc("create", "needle", "write", "bootstrap", null, T0);
    await rpc("takeRowsRead");
    await rpc("list", T0);
    expect(await rpc("takeRowsRead")).toBeGreaterThan(100); // the count is real: a listing reads them all
    expect(await rpc("authenticate", `Bearer ${token}`, "10.0.0.5", T0)).toMatchObject({ ok: true });
    expect(await rpc("takeRowsRead")).toBeLessThanOrEqual(2);
    expect(await rpc("authenticate", "Bearer edgemesh_not-a-token", "10.0.0.5", T0)).toMatchObject({ ok: false });
    expect(await rpc("takeRowsRead")).toBeLessThanOrEqual(1);
  });

  it("tokens survive a restart of the runtime; revocations too", async () => {
    const { token } = await rpc("create", "survivor", "write", "bootstrap", null, T0);
    await mf.dispose();
    mf = await start();
    expect(await rpc("authenticate", `Bearer ${token}`, "10.0.0.3", T0)).toEqual({ ok: true, principal: { name: "survivor", scope: "write" } });
    expect((await rpc("list", T0)).map((t: any) => t.name)).not.toContain("dashboard");
  });
});

describe("the audit log on Durable Object SQLite", () => {
  const record = (i: number, over: Record<string, unknown> = {}) => ({
    atMs: T0 + i, mesh: "bookinfo", tokenName: i % 3 === 0 ? "ci" : "ops", tokenScope: "write", action: i % 2 === 0 ? "policy.apply" : "registry.register",
    target: `t${i}`, outcome: "ok", clientIp: "192.0.2.1", detail: { version: i }, ...over,
  });

  it("pages newest first, filters by token, action prefix and mesh in SQL, keeps the newest records and survives a restart", async () => {
    const seqs: number[] = [];
    for (let i = 1; i <= 400; i++) seqs.push(await rpc("appendAudit", record(i, i === 400 ? { mesh: "other" } : {})));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const first = await rpc("auditPage", { limit: 10 });
    expect(first.records.map((r: any) => r.target)).toEqual(Array.from({ length: 10 }, (_, i) => `t${400 - i}`));
    expect(first.records[1]).toEqual({ seq: seqs[398], ...record(399) });
    const second = await rpc("auditPage", { limit: 10, before: first.nextBefore });
    expect(second.records[0].target).toBe("t390");
    expect((await rpc("auditPage", { tokenName: "ci", limit: 5 })).records.every((r: any) => r.tokenName === "ci")).toBe(true);
    expect((await rpc("auditPage", { action: "policy.", limit: 1000 })).records.every((r: any) => r.action === "policy.apply")).toBe(true);
    // The prefix is a prefix, not a pattern: no wildcard in it is interpreted.
    expect((await rpc("auditPage", { action: "%", limit: 5 })).records).toEqual([]);
    expect((await rpc("auditPage", { mesh: "other" })).records.map((r: any) => r.target)).toEqual(["t400"]);
    // Pruned to the newest 150 (once per 100 inserts, so up to 100 more in between).
    const all = await rpc("auditPage", { limit: 1000 });
    expect(all.records.length).toBeGreaterThanOrEqual(150);
    expect(all.records.length).toBeLessThanOrEqual(250);
    expect(all.records.at(-1).target).not.toBe("t1");
    expect(all.nextBefore).toBeNull();
    await mf.dispose();
    mf = await start();
    expect((await rpc("auditPage", { limit: 1 })).records[0].target).toBe("t400");
  });
});
