// Merging registered instances with declared endpoints, sync status and the sidecar's report batches.
import { beforeEach, describe, expect, it } from "vitest";
import { mergeRegistered, type RegisteredInstance } from "../../durable/registry-merge.ts";
import { syncStatus, type SidecarSeen } from "../../durable/sync.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { recordOutcome, restoreOutcomes, takeOutcomes } from "../../workers/sidecar/report.ts";

function doc() {
  const checked = validatePolicy({
    mesh: "m",
    services: {
      web: { endpoints: [{ id: "web-1", binding: "WEB_1" }, { id: "web-2", url: "https://two.example/" }] },
    },
  });
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return checked.document;
}

const instance = (service: string, id: string, target: { binding?: string; url?: string }): RegisteredInstance => ({
  service, id, labels: {}, weight: 1, ...target, leaseTtlMs: 1000, registeredAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: 1000,
});

describe("mergeRegistered", () => {
  it("adds registered instances to their service", () => {
    const { extra, conflicts } = mergeRegistered(doc(), [instance("web", "web-3", { url: "https://three.example" })]);
    expect(extra.web?.map((e) => e.id)).toEqual(["web-3"]);
    expect(conflicts).toEqual([]);
  });

  it("reports an id the policy declares, and serves only the policy's endpoint", () => {
    const { extra, conflicts } = mergeRegistered(doc(), [instance("web", "web-1", { binding: "OTHER" })]);
    expect(extra.web).toBeUndefined();
    expect(conflicts).toEqual([expect.objectContaining({ kind: "id-declared-in-policy", endpointId: "web-1", effect: "shadowed" })]);
  });

  it("reports two endpoints reaching the same target, trailing slash or not", () => {
    const { extra, conflicts } = mergeRegistered(doc(), [instance("web", "web-9", { url: "https://two.example" })]);
    expect(extra.web?.map((e) => e.id)).toEqual(["web-9"]);
    expect(conflicts).toEqual([expect.objectContaining({ kind: "same-target", endpointId: "web-9", otherEndpointId: "web-2", effect: "both-kept" })]);
  });

  it("reports instances of a service the policy lacks", () => {
    const { extra, conflicts } = mergeRegistered(doc(), [instance("ghost", "g-1", { binding: "G" })]);
    expect(extra).toEqual({});
    expect(conflicts[0]).toMatchObject({ kind: "service-not-in-policy", effect: "not-served" });
  });
});

describe("syncStatus", () => {
  const seen = (isolateId: string, generation: number, lastSeenMs: number, service = "web"): SidecarSeen => ({
    service, isolateId, colo: "AMS", generation, policyVersion: 1, sentGeneration: generation, firstSeenMs: 0, lastSeenMs, checkIns: 1,
  });
  const generations = (entries: Record<string, number>) => new Map(Object.entries(entries).map(([s, generation]) => [s, { generation, snapshotsServed: 0, notModified: 0 }]));

  it("is live only when every recently seen sidecar serves its service's snapshot as of the target", () => {
    const status = syncStatus([seen("a", 5, 900), seen("b", 4, 950), seen("c", 6, 990)], 5, 1, 1_000, generations({ web: 5 }), () => 5_000);
    expect(status.live).toBe(false);
    expect(status.laggards).toEqual(["web/b@AMS"]);
    expect(status.services.web).toMatchObject({ generation: 5, required: 5, live: false, synced: 2, behind: 1 });
    expect(syncStatus([seen("a", 5, 900), seen("c", 6, 990)], 5, 1, 1_000, generations({ web: 5 }), () => 5_000).live).toBe(true);
  });

  it("counts a sidecar whose service did not change since as synced with a later target", () => {
    // api changed at 9; web last changed at 3, so web's sidecars at 3 are live for target 9.
    const status = syncStatus([seen("w", 3, 900, "web"), seen("x", 8, 900, "api")], 9, 2, 1_000, generations({ web: 3, api: 9 }), () => 5_000);
    expect(status.laggards).toEqual(["api/x@AMS"]);
    expect(status.services.web).toMatchObject({ required: 3, live: true, synced: 1 });
    expect(status.services.api).toMatchObject({ required: 9, live: false, behind: 1 });
  });

  it("does not wait for sidecars that went away", () => {
    const status = syncStatus([seen("a", 5, 9_000), seen("old", 1, 0)], 5, 1, 10_000, generations({ web: 5 }), () => 5_000);
    expect(status).toMatchObject({ live: true, laggards: [], gone: 1 });
    expect(status.sidecars.find((s) => s.isolateId === "old")?.state).toBe("gone");
  });
});

describe("sidecar outcome reports", () => {
  beforeEach(() => void takeOutcomes());

  it("batches outcomes per endpoint and empties on take", () => {
    recordOutcome("a", false, 10);
    recordOutcome("a", true, 30);
    recordOutcome("b", false, 5);
    expect(takeOutcomes()).toEqual([
      { endpointId: "a", requests: 2, failures: 1, latencyMsSum: 40, latencyMsMax: 30 },
      { endpointId: "b", requests: 1, failures: 0, latencyMsSum: 5, latencyMsMax: 5 },
    ]);
    expect(takeOutcomes()).toEqual([]);
  });

  it("puts back a batch that could not be sent", () => {
    recordOutcome("a", true, 10);
    const batch = takeOutcomes();
    recordOutcome("a", false, 20);
    restoreOutcomes(batch);
    expect(takeOutcomes()).toEqual([{ endpointId: "a", requests: 2, failures: 1, latencyMsSum: 30, latencyMsMax: 20 }]);
  });
});
