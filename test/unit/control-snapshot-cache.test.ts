// The sidecar's snapshot cache as the control plane sees it: how many check-ins it makes. Each
// test loads the module afresh, so no state is shared between tests. (Node has no Cache API: the
// cache steps fail and are only remembered, as they would on a cache error.)
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { MeshControlRpc, ServiceSnapshot, SidecarCheckIn, SnapshotReply } from "../../policies/snapshot.ts";
import { compiledService } from "./resilience-fixtures.ts";

const snapshotOf = (generation: number, epoch = "e1"): ServiceSnapshot => ({ ...compiledService(), policyVersion: generation, generation, epoch, snapshotTtlMs: 1_000 });

async function freshCache() {
  vi.resetModules();
  return import("../../workers/sidecar/snapshot-cache.ts");
}

beforeEach(() => void vi.useRealTimers());

describe("cold isolate", () => {
  it("makes one control-plane call however many requests arrive at once (single flight)", async () => {
    const { currentSnapshot } = await freshCache();
    const calls: SidecarCheckIn[] = [];
    let answer!: (reply: SnapshotReply) => void;
    const control = { snapshot: (c: SidecarCheckIn) => (calls.push(c), new Promise<SnapshotReply>((resolve) => (answer = resolve))) } as unknown as MeshControlRpc;
    const src = { meshName: "m", serviceName: "api", control: () => control, colo: "AMS", defaultTtlMs: 1_000, coldTimeoutMs: 5_000 };
    const pending: Promise<unknown>[] = [];
    const requests = Array.from({ length: 25 }, () => currentSnapshot(src, (p) => void pending.push(p)));
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    answer({ status: "ok", snapshot: snapshotOf(4) });
    const loaded = await Promise.all(requests);
    expect(new Set(loaded.map((l) => l?.snapshot.generation))).toEqual(new Set([4]));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ service: "api", mesh: "m", knownGeneration: 0, knownEpoch: "" });
  });

  it("loads again on the next request when the one load failed", async () => {
    const { currentSnapshot } = await freshCache();
    let calls = 0;
    const control = { snapshot: async () => (++calls === 1 ? Promise.reject(new Error("down")) : { status: "ok", snapshot: snapshotOf(2) }) } as unknown as MeshControlRpc;
    const src = { meshName: "m", serviceName: "api", control: () => control, colo: "AMS", defaultTtlMs: 1_000, coldTimeoutMs: 5_000 };
    expect(await Promise.all([currentSnapshot(src, () => {}), currentSnapshot(src, () => {})])).toEqual([undefined, undefined]);
    expect((await currentSnapshot(src, () => {}))?.snapshot.generation).toBe(2);
    expect(calls).toBe(2);
  });
});
