import { describe, expect, it } from "vitest";
import type { MeshControlRpc, ServiceSnapshot, SnapshotReply } from "../../policies/snapshot.ts";
import { currentSnapshot, snapshotStatus, type SnapshotSource } from "../../workers/sidecar/snapshot-cache.ts";
import { compiledService } from "./resilience-fixtures.ts";

const snapshotOf = (generation: number, epoch = "first"): ServiceSnapshot => ({ ...compiledService(), policyVersion: generation, generation, epoch, snapshotTtlMs: 0 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("snapshot revalidation", () => {
  it("never lets a stalled older revalidation overwrite a newer snapshot", async () => {
    // Each check-in gets the next reply; the test decides when each answers.
    const replies: ((reply: SnapshotReply) => void)[] = [];
    const control = { snapshot: () => new Promise<SnapshotReply>((resolve) => replies.push(resolve)) } as unknown as MeshControlRpc;
    // No Cache API in Node: the cache steps fail and are only remembered, as on a cache error.
    const src: SnapshotSource = { meshName: "m", serviceName: "api", control: () => control, colo: "", defaultTtlMs: 1, coldTimeoutMs: 5 };
    const pending: Promise<unknown>[] = [];
    const waitUntil = (p: Promise<unknown>) => void pending.push(p);

    const cold = currentSnapshot(src, waitUntil);
    while (replies.length < 1) await sleep(1);
    replies[0]!({ status: "ok", snapshot: snapshotOf(1) });
    expect((await cold)!.snapshot.generation).toBe(1);

    await sleep(3);
    await currentSnapshot(src, waitUntil); // revalidation 1 starts and stalls
    while (replies.length < 2) await sleep(1);
    await sleep(10); // longer than coldTimeoutMs: presumed lost, so another may start
    await currentSnapshot(src, waitUntil);
    while (replies.length < 3) await sleep(1);
    replies[2]!({ status: "ok", snapshot: snapshotOf(3) });
    await sleep(1);
    expect(snapshotStatus().loaded!.snapshot.generation).toBe(3);
    replies[1]!({ status: "ok", snapshot: snapshotOf(2) }); // the stalled one answers last
    await Promise.all(pending);
    expect(snapshotStatus().loaded!.snapshot.generation).toBe(3);
  });

  it("takes a snapshot of a new epoch even though its generation is lower (the control plane's storage was reset)", async () => {
    const replies: ((reply: SnapshotReply) => void)[] = [];
    const asked: { knownEpoch?: string; knownGeneration: number }[] = [];
    const control = {
      snapshot: (checkIn: { knownEpoch?: string; knownGeneration: number }) => {
        asked.push(checkIn);
        return new Promise<SnapshotReply>((resolve) => replies.push(resolve));
      },
    } as unknown as MeshControlRpc;
    const src: SnapshotSource = { meshName: "m", serviceName: "api", control: () => control, colo: "", defaultTtlMs: 1, coldTimeoutMs: 50 };
    const pending: Promise<unknown>[] = [];
    const waitUntil = (p: Promise<unknown>) => void pending.push(p);
    // The isolate serves generation 3 of epoch "first" (the test above).
    await sleep(3);
    await currentSnapshot(src, waitUntil);
    while (replies.length < 1) await sleep(1);
    expect(asked[0]).toMatchObject({ knownEpoch: "first", knownGeneration: 3 });
    replies[0]!({ status: "ok", snapshot: snapshotOf(1, "second") });
    await Promise.all(pending);
    expect(snapshotStatus().loaded!.snapshot).toMatchObject({ epoch: "second", generation: 1 });
  });
});
