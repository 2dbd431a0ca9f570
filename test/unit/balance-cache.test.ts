import { describe, expect, it, vi } from "vitest";
import type { CompiledEndpoint } from "../../policies/snapshot.ts";
import { compiledService, seeded } from "./resilience-fixtures.ts";

const built = vi.hoisted(() => ({ count: 0 }));
vi.mock("../../workers/sidecar/maglev.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../workers/sidecar/maglev.ts")>();
  return { ...real, buildMaglevTable: (ids: readonly string[], size: number) => (built.count++, real.buildMaglevTable(ids, size)) };
});
const { chooseEndpoint, MAGLEV_TABLES_KEPT } = await import("../../workers/sidecar/balance.ts");

const lb = compiledService({ loadBalancer: { algorithm: "consistent-hash", hashOn: { header: "x-user" }, maglevTableSize: 4099 } }).loadBalancer;
const endpoints = (prefix: string): CompiledEndpoint[] => [0, 1, 2].map((i) => ({ id: `${prefix}-${i}`, binding: "X", labels: {}, weight: 1 }));
const pick = (eps: CompiledEndpoint[], members: number[], key: string) =>
  chooseEndpoint(lb, eps, members, { nowMs: 0, random: seeded(1), exclude: [], available: undefined, hashKey: key, colo: "" });

describe("Maglev tables", () => {
  it("are reused by a new snapshot with the same members, and only a few are kept", () => {
    const eps = endpoints("same");
    built.count = 0;
    const first = pick(eps, [0, 1, 2], "user-1");
    // Every snapshot brings new arrays; the members are the same endpoints.
    for (let n = 0; n < 20; n++) expect(pick(endpoints("same"), [0, 1, 2], "user-1")).toBe(first);
    expect(built.count).toBe(1);
    for (let n = 0; n < MAGLEV_TABLES_KEPT + 2; n++) pick(endpoints(`other${n}`), [0, 1, 2], "user-1");
    expect(built.count).toBe(1 + MAGLEV_TABLES_KEPT + 2);
    // The first table was evicted, so it is built again.
    pick(endpoints("same"), [0, 1, 2], "user-1");
    expect(built.count).toBe(2 + MAGLEV_TABLES_KEPT + 2);
  });
});
