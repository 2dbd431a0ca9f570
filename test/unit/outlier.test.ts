import { describe, expect, it } from "vitest";
import { isAdmitted, newOutlierState, recordOutlierOutcome, takeProbe } from "../../workers/sidecar/outlier.ts";
import { compiledService } from "./resilience-fixtures.ts";

const cfg = { ...compiledService().outlierDetection, baseEjectionMs: 1000, maxEjectionMs: 2500 };
const ids = ["a", "b", "c", "d"];
const asEndpoints = ids.map((id) => ({ id }));
const members = [0, 1, 2, 3];

describe("outlier detection", () => {
  it("ejects after consecutive gateway errors, not after interleaved ones", () => {
    const s = newOutlierState();
    recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 0);
    recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 1);
    recordOutlierOutcome(s, cfg, "a", "success", 4, 2);
    recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 3);
    recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 4);
    expect(isAdmitted(s, "a")).toBe(true);
    recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 5);
    expect(isAdmitted(s, "a")).toBe(false);
    expect(s.events.at(-1)).toMatchObject({ endpoint: "a", event: "ejected", reason: "3 consecutive gateway errors", ejectionMs: 1000 });
  });

  it("ejects after consecutive 5xx of any kind", () => {
    const s = newOutlierState();
    for (let i = 0; i < 4; i++) recordOutlierOutcome(s, cfg, "b", "5xx", 4, i);
    expect(isAdmitted(s, "b")).toBe(true);
    recordOutlierOutcome(s, cfg, "b", "5xx", 4, 5);
    expect(isAdmitted(s, "b")).toBe(false);
    expect(s.events.at(-1)!.reason).toBe("5 consecutive 5xx");
  });

  it("sends exactly one probe once the ejection is over, and re-admits on success", () => {
    const s = newOutlierState();
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 0);
    expect(takeProbe(s, cfg, asEndpoints, members, 999)).toBe(-1);
    expect(takeProbe(s, cfg, asEndpoints, members, 1000)).toBe(0);
    expect(takeProbe(s, cfg, asEndpoints, members, 1001)).toBe(-1); // the probe is in flight
    expect(isAdmitted(s, "a")).toBe(false);
    recordOutlierOutcome(s, cfg, "a", "success", 4, 1010);
    expect(isAdmitted(s, "a")).toBe(true);
    expect(s.events.map((e) => e.event)).toEqual(["ejected", "probe-sent", "readmitted"]);
  });

  it("ejects again for longer when the probe fails, up to the cap", () => {
    const s = newOutlierState();
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 0);
    let now = 1000;
    const lengths: number[] = [];
    for (let round = 0; round < 3; round++) {
      expect(takeProbe(s, cfg, asEndpoints, members, now)).toBe(0);
      recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, now);
      const ev = s.events.at(-1)!;
      expect(ev.event).toBe("ejected");
      lengths.push(ev.ejectionMs!);
      now += ev.ejectionMs!;
    }
    expect(lengths).toEqual([2000, 2500, 2500]);
  });

  it("never ejects more than maxEjectionPercent of the endpoints", () => {
    const s = newOutlierState();
    for (const id of ids) for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, id, "gateway-error", 4, 0);
    expect(s.ejectedCount).toBe(2); // 50% of 4
    expect(ids.filter((id) => !isAdmitted(s, id))).toEqual(["a", "b"]);
  });

  it("presumes a probe lost when it never reports back", () => {
    const s = newOutlierState();
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 0);
    expect(takeProbe(s, cfg, asEndpoints, members, 1000)).toBe(0);
    expect(takeProbe(s, cfg, asEndpoints, members, 1500)).toBe(-1);
    expect(takeProbe(s, cfg, asEndpoints, members, 2000)).toBe(0);
  });
});

describe("a new snapshot", () => {
  it("forgets endpoints that left, so they no longer count against maxEjectionPercent", async () => {
    const { retainEndpoints } = await import("../../workers/sidecar/outlier.ts");
    const s = newOutlierState();
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "old", "gateway-error", 2, 0);
    expect(s.ejectedCount).toBe(1);
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "a", "gateway-error", 2, 0);
    expect(isAdmitted(s, "a")).toBe(true); // blocked by the stale ejection (max 1 of 2)
    retainEndpoints(s, cfg, new Set(["a", "b"]));
    expect(s.ejectedCount).toBe(0);
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "a", "gateway-error", 2, 0);
    expect(isAdmitted(s, "a")).toBe(false);
  });
});

describe("probes across subsets", () => {
  it("a request for another subset does not hide an ejected endpoint's probe", () => {
    const s = newOutlierState();
    const subsetA = [0, 1];
    const subsetB = [2, 3];
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 0);
    // Only subset B's traffic arrives once a's ejection is over.
    expect(takeProbe(s, cfg, asEndpoints, subsetB, 1000)).toBe(-1);
    expect(takeProbe(s, cfg, asEndpoints, subsetB, 1001)).toBe(-1);
    expect(s.nextProbeDueMs).toBe(1000);
    expect(takeProbe(s, cfg, asEndpoints, subsetA, 1002)).toBe(0);
    // Now a is probing: its probe is presumed lost after baseEjectionMs.
    expect(s.nextProbeDueMs).toBe(2002);
  });

  it("a new snapshot keeps a probing endpoint's due time at probeSentAtMs + baseEjectionMs", async () => {
    const { retainEndpoints } = await import("../../workers/sidecar/outlier.ts");
    const s = newOutlierState();
    for (let i = 0; i < 3; i++) recordOutlierOutcome(s, cfg, "a", "gateway-error", 4, 0);
    expect(takeProbe(s, cfg, asEndpoints, members, 1000)).toBe(0);
    retainEndpoints(s, cfg, new Set(ids));
    expect(s.nextProbeDueMs).toBe(2000);
    expect(takeProbe(s, cfg, asEndpoints, members, 1500)).toBe(-1);
    expect(takeProbe(s, cfg, asEndpoints, members, 2000)).toBe(0);
  });
});
