// A real `edgemesh deploy` against a stand-in Cloudflare account: it answers `wrangler secret list`
// and `wrangler deploy` as the platform does, including its refusals (a binding to a Worker that
// does not exist, a required secret not set). The test runs no network and uploads nothing; what
// it checks is the command's order, its secret checks and how it stops.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/build.ts";
import { runDeploy } from "../../scripts/deploy/command.ts";
import type { WranglerConfig } from "../../scripts/deploy/configs.ts";
import { bindingTargets } from "../../scripts/deploy/plan.ts";
import type { WranglerOptions, WranglerRun } from "../../scripts/deploy/wrangler.ts";

class FakeAccount {
  /** Worker -> the names of its secrets. */
  readonly workers = new Map<string, Set<string>>();
  readonly deployed: string[] = [];
  failDeployOf?: string;

  constructor(existing: Record<string, string[]> = {}) {
    for (const [name, secrets] of Object.entries(existing)) this.workers.set(name, new Set(secrets));
  }

  wrangler = async (args: readonly string[], _opts: WranglerOptions): Promise<WranglerRun> => {
    const config = await readConfig(args[args.indexOf("-c") + 1]!);
    if (args[0] === "secret" && args[1] === "list") {
      const name = args.includes("--name") ? args[args.indexOf("--name") + 1]! : config.name;
      const secrets = this.workers.get(name);
      if (!secrets) return { code: 1, stdout: "", stderr: `✘ [ERROR] Worker "${name}" not found.\n\nIf this is a new Worker, run \`wrangler deploy\` first to create it.` };
      return { code: 0, stdout: JSON.stringify([...secrets].map((s) => ({ name: s, type: "secret_text" }))), stderr: "" };
    }
    if (args[0] === "deploy" && !args.includes("--dry-run")) {
      if (config.name === this.failDeployOf) return { code: 1, stdout: "", stderr: "✘ [ERROR] something failed" };
      const missing = (config.secrets?.required ?? []).filter((s) => !this.workers.get(config.name)?.has(s));
      if (missing.length) return { code: 1, stdout: "", stderr: `The following required secrets have not been set: ${missing.join(", ")}` };
      for (const b of bindingTargets(config)) {
        if (!this.workers.has(b.target)) return { code: 1, stdout: "", stderr: `Service binding '${b.binding}' references Worker '${b.target}' which was not found.` };
      }
      this.workers.set(config.name, this.workers.get(config.name) ?? new Set());
      this.deployed.push(config.name);
      return { code: 0, stdout: "", stderr: "" };
    }
    throw new Error(`the fake account does not know wrangler ${args.join(" ")}`);
  };
}

async function readConfig(file: string): Promise<WranglerConfig> {
  return JSON.parse((await readFile(file, "utf8")).split("\n").filter((l) => !l.startsWith("//")).join("\n"));
}

const SIDECARS = ["productpage", "details", "reviews", "ratings"].map((s) => `edgemesh-sidecar-${s}`);
/** What `wrangler secret put` leaves behind for the required secrets: the Workers exist, with them. */
const afterSecrets = () => ({
  "edgemesh-control": ["EDGEMESH_ADMIN_TOKEN", "EDGEMESH_TOKEN_KEYS"],
  ...Object.fromEntries(SIDECARS.map((s) => [s, ["EDGEMESH_TOKEN_KEYS"]])),
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "edgemesh-deploy-command-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function deploy(account: FakeAccount, extra: { only?: string[] } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runDeploy({ description: "policies/bookinfo.deploy.json", out: path.join(dir, "out"), cwd: ROOT, print: (l) => out.push(l), printError: (l) => err.push(l), wrangler: account.wrangler, ...extra });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("edgemesh deploy against an account", () => {
  it("from nothing: deploys nothing and prints the required secrets to set, by name", async () => {
    const account = new FakeAccount();
    const result = await deploy(account);
    expect(result.code).toBe(1);
    expect(account.deployed).toEqual([]);
    expect(result.err).toContain("required secrets are not set yet, so nothing was deployed");
    const commands = [...result.err.matchAll(/wrangler secret put (\S+) -c (\S+)/g)].map(([, name, file]) => `${name} ${path.basename(file!)}`);
    expect(commands).toEqual([
      "EDGEMESH_ADMIN_TOKEN edgemesh-control.jsonc",
      "EDGEMESH_TOKEN_KEYS edgemesh-control.jsonc",
      ...["details", "ratings", "reviews", "productpage"].map((s) => `EDGEMESH_TOKEN_KEYS edgemesh-sidecar-${s}.jsonc`),
    ]);
    expect(result.err).not.toContain("EDGEMESH_ANALYTICS");
  });

  it("once the secrets are set: deploys every Worker in order, each binding resolving at its upload", async () => {
    const account = new FakeAccount(afterSecrets());
    const result = await deploy(account);
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    expect(account.deployed).toEqual([
      "edgemesh-control",
      "bookinfo-details-v1", "edgemesh-sidecar-details",
      "bookinfo-ratings-v1", "edgemesh-sidecar-ratings",
      "bookinfo-reviews-v1", "bookinfo-reviews-v2", "bookinfo-reviews-v3", "edgemesh-sidecar-reviews",
      "bookinfo-productpage-v1", "edgemesh-sidecar-productpage",
    ]);
    expect(result.out).toContain("optional secrets not set:");
    expect(result.out).toContain("EDGEMESH_ANALYTICS_API_TOKEN");
    // A second run is an update: the same order, everything exists.
    const again = await deploy(account);
    expect(again.code).toBe(0);
    expect(account.deployed).toHaveLength(22);
  });

  it("stops at the first failed upload and says the rest were not deployed", async () => {
    const account = new FakeAccount(afterSecrets());
    account.failDeployOf = "edgemesh-sidecar-ratings";
    const result = await deploy(account);
    expect(result.code).toBe(1);
    expect(account.deployed).toEqual(["edgemesh-control", "bookinfo-details-v1", "edgemesh-sidecar-details", "bookinfo-ratings-v1"]);
    expect(result.err).toContain("wrangler deploy of edgemesh-sidecar-ratings failed");
  });

  it("--only deploys a service's Workers when the rest of the mesh exists, and refuses when a binding's target does not", async () => {
    const account = new FakeAccount(afterSecrets());
    let result = await deploy(account, { only: ["edgemesh-sidecar-reviews"] });
    expect(result.code).toBe(1);
    expect(account.deployed).toEqual([]);
    expect(result.err).toContain("edgemesh-sidecar-reviews: REVIEWS_V1 -> bookinfo-reviews-v1 (deploy bookinfo-reviews-v1 first (edgemesh deploy --only reviews))");

    result = await deploy(account, { only: ["reviews"] });
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    expect(account.deployed).toEqual(["bookinfo-reviews-v1", "bookinfo-reviews-v2", "bookinfo-reviews-v3", "edgemesh-sidecar-reviews"]);
  });

  it("refuses when wrangler cannot tell what exists (not logged in), deploying nothing", async () => {
    const calls: string[] = [];
    const errors: string[] = [];
    const code = await runDeploy({
      description: "policies/bookinfo.deploy.json",
      out: path.join(dir, "out"),
      cwd: ROOT,
      print: () => {},
      printError: (l) => errors.push(l),
      wrangler: async (args) => {
        calls.push(args.slice(0, 2).join(" "));
        return { code: 1, stdout: "", stderr: "✘ [ERROR] Not logged in." };
      },
    });
    expect(code).toBe(1);
    expect(calls).toEqual(["secret list"]);
    expect(errors.join("\n")).toContain("cannot list the secrets of edgemesh-control: ✘ [ERROR] Not logged in.");
  });
});
