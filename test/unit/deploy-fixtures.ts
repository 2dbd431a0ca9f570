// The example mesh's description and policy for the deploy tests, and the same mesh with one
// more service ("stock": called by productpage, with a shared rate limit).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { validatePolicy, type PolicyDocument } from "../../policies/schema.ts";
import { ROOT } from "../../scripts/build.ts";
import { generateWorkers, type GeneratedWorker } from "../../scripts/deploy/configs.ts";
import { resolveDeployment, type DescriptionResult, type MeshDeployment } from "../../scripts/deploy/description.ts";

export const DESCRIPTION_DIR = path.join(ROOT, "policies");
export const OUT_DIR = path.join(ROOT, ".edgemesh/deploy/test");

export async function bookinfoDescription(): Promise<any> {
  return JSON.parse(await readFile(path.join(ROOT, "policies/bookinfo.deploy.json"), "utf8"));
}

export async function bookinfoPolicy(): Promise<any> {
  return JSON.parse(await readFile(path.join(ROOT, "policies/bookinfo.json"), "utf8"));
}

export function validPolicy(input: unknown): PolicyDocument {
  const result = validatePolicy(input);
  if (!result.ok) throw new Error(`test policy is invalid: ${JSON.stringify(result.errors)}`);
  return result.document;
}

export function resolve(description: unknown, policy: unknown): DescriptionResult {
  return resolveDeployment(description, validPolicy(policy), DESCRIPTION_DIR);
}

export function resolved(description: unknown, policy: unknown): MeshDeployment {
  const result = resolve(description, policy);
  if (!result.ok) throw new Error(`test description is invalid: ${JSON.stringify(result.errors)}`);
  return result.deployment;
}

export function generate(d: MeshDeployment): GeneratedWorker[] {
  return generateWorkers(d, { root: ROOT, outDir: OUT_DIR });
}

/** Adds the "stock" service: one endpoint, a shared rate limit, and productpage calling it. */
export function withStockService(policy: any, description: any): { policy: any; description: any } {
  const p = structuredClone(policy);
  const d = structuredClone(description);
  p.services.stock = {
    endpoints: [{ id: "stock-v1", binding: "STOCK_V1", labels: { version: "v1" } }],
    rateLimits: [{ name: "shared-writes", requests: 600, periodMs: 60_000, shared: { binding: "RATE_LIMIT_STOCK" } }],
  };
  d.services.stock = { instances: [{ binding: "STOCK_V1", main: "../examples/bookinfo/details.ts", vars: { VERSION: "v1" } }] };
  d.services.productpage.instances[0].calls.STOCK = "stock";
  return { policy: p, description: d };
}

export const byName = (workers: readonly GeneratedWorker[], name: string): GeneratedWorker => {
  const w = workers.find((x) => x.config.name === name);
  if (!w) throw new Error(`no generated Worker ${name}; have ${workers.map((x) => x.config.name).join(", ")}`);
  return w;
};
