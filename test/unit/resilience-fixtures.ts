// Compiled resilience settings for unit tests, taken from the real schema and compiler so the
// defaults under test are the shipped ones.
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import type { ServiceSnapshot } from "../../policies/snapshot.ts";

export function compiledService(service: Record<string, unknown> = {}): Omit<ServiceSnapshot, "policyVersion" | "generation" | "epoch"> {
  const checked = validatePolicy({
    mesh: "m",
    services: { api: { endpoints: [{ id: "a", binding: "A" }, { id: "b", binding: "B" }, { id: "c", binding: "C" }], ...service } },
  });
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return compilePolicy(checked.document).services.api!;
}

/** A seeded generator (mulberry32), so statistical tests are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
