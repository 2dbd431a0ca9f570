// `edgemesh deploy --dry-run` as a user runs it: the generated configs of the example meshes go
// through `wrangler deploy --dry-run` (offline), a mesh with one more service deploys its new
// sidecar with the right bindings, a bad description is refused naming the field, and no secret
// value appears anywhere.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { runDeploy } from "../../scripts/deploy/command.ts";
import { runWrangler } from "../../scripts/deploy/wrangler.ts";
import { bookinfoDescription, bookinfoPolicy, withStockService } from "../unit/deploy-fixtures.ts";

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-deploy-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function deploy(options: { description: string; out: string; only?: string[] }): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runDeploy({ ...options, dryRun: true, cwd: ROOT, print: (l) => out.push(l), printError: (l) => err.push(l) });
  return { code, out, err };
}

async function cli(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, "bin/edgemesh.mjs"), ...args], { cwd, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const readJsonc = async (file: string) => JSON.parse((await readFile(file, "utf8")).split("\n").filter((l) => !l.startsWith("//")).join("\n"));

/** A description and its policy in `folder`, entry modules pointing at the example's files. */
async function writeMesh(folder: string, policy: unknown, description: any): Promise<string> {
  const d = structuredClone(description);
  d.policy = "policy.json";
  for (const svc of Object.values(d.services) as { instances: { main?: string }[] }[]) {
    for (const i of svc.instances) if (i.main) i.main = path.resolve(ROOT, "policies", i.main);
  }
  await writeFile(path.join(folder, "policy.json"), JSON.stringify(policy));
  await writeFile(path.join(folder, "mesh.deploy.json"), JSON.stringify(d));
  return path.join(folder, "mesh.deploy.json");
}

describe("edgemesh deploy --dry-run", () => {
  it.each([
    ["policies/bookinfo.deploy.json", 11],
    ["examples/grpc/mesh.deploy.json", 4],
  ])("%s: every generated Worker passes wrangler deploy --dry-run", async (description, workers) => {
    const out = path.join(dir, path.basename(description, ".json"));
    const result = await deploy({ description, out });
    expect(result.err, result.err.join("\n")).toEqual([]);
    expect(result.code).toBe(0);
    const steps = result.out.filter((l) => /^ ?\d+\. /.test(l));
    expect(steps).toHaveLength(workers);
    for (const step of steps) expect(step).toMatch(/: ok, [\d.]+ KiB/);
    // wrangler wrote each bundle where it was told.
    expect((await readdir(path.join(out, "dry-run"))).length).toBe(workers);
  }, 180_000);

  it("a mesh with one more service deploys one more sidecar, bound to its Worker, its caller and the control plane", async () => {
    const folder = await mkdtemp(path.join(dir, "stock-"));
    const { policy, description } = withStockService(await bookinfoPolicy(), await bookinfoDescription());
    const file = await writeMesh(folder, policy, description);
    const out = path.join(folder, "out");
    const result = await deploy({ description: file, out, only: ["control", "stock", "productpage"] });
    expect(result.err, result.err.join("\n")).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.out.filter((l) => /^ ?\d+\. /.test(l)).map((l) => l.split(/\s+/).filter(Boolean)[1])).toEqual([
      "edgemesh-control", "bookinfo-stock-v1", "edgemesh-sidecar-stock", "bookinfo-productpage-v1", "edgemesh-sidecar-productpage",
    ]);
    expect((await readdir(out)).filter((f) => f.endsWith(".jsonc")).sort()).toEqual([
      "bookinfo-details-v1.jsonc", "bookinfo-productpage-v1.jsonc", "bookinfo-ratings-v1.jsonc", "bookinfo-reviews-v1.jsonc", "bookinfo-reviews-v2.jsonc",
      "bookinfo-reviews-v3.jsonc", "bookinfo-stock-v1.jsonc", "edgemesh-control.jsonc", "edgemesh-sidecar-details.jsonc", "edgemesh-sidecar-productpage.jsonc",
      "edgemesh-sidecar-ratings.jsonc", "edgemesh-sidecar-reviews.jsonc", "edgemesh-sidecar-stock.jsonc",
    ]);

    // What wrangler itself reads from the generated files: its bindings table.
    const bindings = async (worker: string) => {
      const r = await runWrangler(["deploy", "--dry-run", "--outdir", path.join(folder, "bundle", worker), "-c", path.join(out, `${worker}.jsonc`)], { cwd: ROOT, offline: true });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const sidecar = await bindings("edgemesh-sidecar-stock");
    expect(sidecar).toMatch(/env\.STOCK_V1 \(bookinfo-stock-v1\)\s+Worker/);
    expect(sidecar).toMatch(/env\.RATE_LIMIT_STOCK \(600 requests\/60s\)\s+Rate Limit/);
    expect(sidecar).toMatch(/env\.MESH_CONTROL \(MeshControl, defined in edgemesh-control\)\s+Durable Object/);
    expect(sidecar).toMatch(/env\.TELEMETRY \(edgemesh_requests\)\s+Analytics Engine Dataset/);
    expect(sidecar).toMatch(/env\.SERVICE_NAME \("stock"\)\s+Environment Variable/);
    expect(await bindings("bookinfo-productpage-v1")).toMatch(/env\.STOCK \(edgemesh-sidecar-stock\)\s+Worker/);
    expect(await bindings("edgemesh-control")).toMatch(/env\.SIDECAR_STOCK \(edgemesh-sidecar-stock#SidecarControl\)\s+Worker/);
    expect((await readJsonc(path.join(out, "bookinfo-productpage-v1.jsonc"))).services).toContainEqual({ binding: "STOCK", service: "edgemesh-sidecar-stock", props: { caller: "productpage" } });
  }, 180_000);

  it("removes the configs of a service that is gone, and leaves other files alone", async () => {
    const folder = await mkdtemp(path.join(dir, "removed-"));
    const out = path.join(folder, "out");
    const more = withStockService(await bookinfoPolicy(), await bookinfoDescription());
    await deploy({ description: await writeMesh(folder, more.policy, more.description), out, only: ["control"] });
    await writeFile(path.join(out, "mine.jsonc"), "{}");
    expect((await stat(path.join(out, "edgemesh-sidecar-stock.jsonc"))).isFile()).toBe(true);
    await deploy({ description: await writeMesh(folder, await bookinfoPolicy(), await bookinfoDescription()), out, only: ["control"] });
    const files = await readdir(out);
    expect(files).not.toContain("edgemesh-sidecar-stock.jsonc");
    expect(files).not.toContain("bookinfo-stock-v1.jsonc");
    expect(files).toContain("mine.jsonc");
  }, 120_000);
});

describe("the deploy command", () => {
  it("never prints or writes a secret value, and lists the secrets to set by name", async () => {
    const folder = await mkdtemp(path.join(dir, "secrets-"));
    const values = { EDGEMESH_ADMIN_TOKEN: "sentinel-admin-4b1d", EDGEMESH_TOKEN_KEYS: "sentinel-keys-9c2e", EDGEMESH_ANALYTICS_API_TOKEN: "sentinel-analytics-77af", CLOUDFLARE_API_TOKEN: "sentinel-cloudflare-03d1" };
    const description = JSON.parse(await readFile(path.join(ROOT, "examples/grpc/mesh.deploy.json"), "utf8"));
    description.services.greeter.instances = description.services.greeter.instances.map((i: { main: string }) => ({ ...i, main: path.join(ROOT, "examples/grpc", i.main) }));
    const file = await writeMesh(folder, JSON.parse(await readFile(path.join(ROOT, "examples/grpc/mesh.json"), "utf8")), description);
    const out = path.join(folder, "out");
    // The places wrangler looks for local secrets, next to the configs and in the working folder.
    const dotfiles = Object.entries(values).map(([k, v]) => `${k}=${v}`).join("\n");
    await mkdir(out, { recursive: true });
    for (const place of [folder, out]) for (const f of [".dev.vars", ".env"]) await writeFile(path.join(place, f), dotfiles);

    const result = await cli(["deploy", file, "--dry-run", "--out", out], values, folder);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("npx wrangler secret put EDGEMESH_ADMIN_TOKEN -c out/grpc-example-control.jsonc");
    expect(result.stdout).toContain("npx wrangler secret put EDGEMESH_TOKEN_KEYS -c out/edgemesh-sidecar-greeter.jsonc");

    const written: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const entry of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, entry.name);
        if (entry.isDirectory()) await walk(p);
        else if (![".dev.vars", ".env"].includes(entry.name)) written.push(await readFile(p, "utf8"));
      }
    };
    await walk(out);
    expect(written.length).toBeGreaterThan(4); // the configs and wrangler's bundles
    for (const value of Object.values(values)) {
      expect(result.stdout).not.toContain(value);
      expect(result.stderr).not.toContain(value);
      for (const text of written) expect(text).not.toContain(value);
    }
  }, 180_000);

  it("refuses a bad description with every error and its path, deploying nothing", async () => {
    const folder = await mkdtemp(path.join(dir, "bad-"));
    const description = await bookinfoDescription();
    description.services.reviews.instances[0].calls = { RATINGS: "ratingz" };
    description.services.details.workersDev = "yes";
    let result = await cli(["deploy", await writeMesh(folder, await bookinfoPolicy(), description), "--dry-run", "--out", path.join(folder, "out")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("$.services.details.workersDev: Invalid input: expected boolean");
    await expect(stat(path.join(folder, "out"))).rejects.toThrow();

    delete description.services.details.workersDev;
    result = await cli(["deploy", await writeMesh(folder, await bookinfoPolicy(), description), "--dry-run", "--out", path.join(folder, "out")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('$.services.reviews.instances[0].calls.RATINGS: "ratingz" is not a service of the policy');

    description.services.reviews.instances[0].calls = { RATINGS: "ratings" };
    const file = await writeMesh(folder, await bookinfoPolicy(), description);
    const missingEntry = JSON.parse(await readFile(file, "utf8"));
    missingEntry.services.details.instances[0].main = "nope.ts";
    await writeFile(file, JSON.stringify(missingEntry));
    result = await cli(["deploy", file, "--dry-run", "--out", path.join(folder, "out")]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("$.services.details.instances[0].main: nope.ts does not exist (relative to mesh.deploy.json)");
    await expect(stat(path.join(folder, "out"))).rejects.toThrow();

    result = await cli(["deploy", "policies/bookinfo.deploy.json", "--dry-run", "--out", path.join(folder, "out"), "--only", "reveiws"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--only: "reveiws" is neither "control", a service');
  }, 60_000);

  it("has a help page", async () => {
    const result = await cli(["help", "deploy"]);
    expect(result.code).toBe(0);
    for (const text of ["Usage: edgemesh deploy [options] [description]", "--dry-run", "--out <dir>", "--only <names>", "docs/deploy.md"]) expect(result.stdout).toContain(text);
  });
});
