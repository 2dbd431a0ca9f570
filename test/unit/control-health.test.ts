// The pure health logic behind MeshControl: thresholds, passive windows, excluded endpoints and the ejection cap.
import { describe, expect, it } from "vitest";
import { addOutcome, afterProbe, INITIAL_ACTIVE_HEALTH, markExcluded, maxPassiveEjections, passiveEjection, probeVerdict, type ActiveHealth } from "../../durable/health.ts";

const check = { healthyThreshold: 2, unhealthyThreshold: 3 };
const fail = { ok: false, detail: "status 503 (expected 200)" };
const pass = { ok: true, detail: "status 200" };

function run(results: { ok: boolean; detail: string }[], start: ActiveHealth = INITIAL_ACTIVE_HEALTH) {
  let h = start;
  const transitions: string[] = [];
  for (const r of results) {
    const out = afterProbe(h, r, check);
    h = out.next;
    if (out.transition) transitions.push(`${out.transition.from}->${out.transition.to}`);
  }
  return { h, transitions };
}

describe("active health thresholds", () => {
  it("goes unhealthy only at the unhealthy threshold", () => {
    expect(run([fail, fail]).h.state).toBe("healthy");
    const { h, transitions } = run([fail, fail, fail]);
    expect(h.state).toBe("unhealthy");
    expect(transitions).toEqual(["healthy->unhealthy"]);
  });

  it("a pass in between resets the count of failures", () => {
    expect(run([fail, fail, pass, fail, fail]).h.state).toBe("healthy");
  });

  it("comes back only at the healthy threshold", () => {
    const down = run([fail, fail, fail]).h;
    expect(run([pass], down).h.state).toBe("unhealthy");
    expect(run([pass, fail, pass], down).h.state).toBe("unhealthy");
    const { h, transitions } = run([pass, pass], down);
    expect(h.state).toBe("healthy");
    expect(transitions).toEqual(["unhealthy->healthy"]);
  });

  it("explains a transition with the counts and the last result", () => {
    const out = afterProbe({ state: "healthy", consecutiveOk: 0, consecutiveFail: 2 }, fail, check);
    expect(out.transition?.reason).toBe("3 consecutive failed checks (threshold 3); last: status 503 (expected 200)");
  });

  it("judges statuses against the expected list", () => {
    expect(probeVerdict(204, [200, 204]).ok).toBe(true);
    expect(probeVerdict(500, [200])).toEqual({ ok: false, detail: "status 500 (expected 200)" });
  });
});

describe("passive health windows", () => {
  const policy = { windowMs: 1_000, minRequests: 10, failurePercent: 50 };
  const outcome = (requests: number, failures: number) => ({ endpointId: "a", requests, failures, latencyMsSum: requests * 2, latencyMsMax: 9 });

  it("sums reports from several isolates within a window", () => {
    let w = addOutcome(undefined, outcome(4, 3), 0, policy);
    w = addOutcome(w, outcome(6, 3), 500, policy);
    expect(w).toMatchObject({ startedAtMs: 0, requests: 10, failures: 6, latencyMsMax: 9 });
    expect(passiveEjection(w, 500, policy)).toMatch(/6 failed of 10 requests \(60%, threshold 50%\)/);
  });

  it("needs minRequests before it can eject", () => {
    const w = addOutcome(undefined, outcome(9, 9), 0, policy);
    expect(passiveEjection(w, 0, policy)).toBeNull();
  });

  it("starts a new window once the old one is over", () => {
    const old = addOutcome(undefined, outcome(8, 8), 0, policy);
    const w = addOutcome(old, outcome(5, 5), 1_000, policy);
    expect(w).toMatchObject({ startedAtMs: 1_000, requests: 5, failures: 5 });
  });

  it("stays below the failure share", () => {
    const w = addOutcome(undefined, outcome(100, 49), 0, policy);
    expect(passiveEjection(w, 0, policy)).toBeNull();
  });
});

describe("excluded endpoints", () => {
  const endpoints = [{ id: "a", weight: 1 }, { id: "b", weight: 1 }, { id: "c", weight: 1, healthy: true }];

  it("marks excluded endpoints unhealthy and leaves the rest, and subsets, as they are", () => {
    const marked = markExcluded(endpoints, (id) => id !== "b");
    expect(marked.map((e) => e.healthy)).toEqual([false, undefined, false]);
    expect(marked[1]).toBe(endpoints[1]);
    // The input is never changed, and nothing excluded returns the same array.
    expect(endpoints[0]).not.toHaveProperty("healthy");
    expect(markExcluded(endpoints, () => false)).toBe(endpoints);
  });

  it("caps passive ejections at maxEjectionPercent of the endpoints, at least one unless the percentage is 0", () => {
    expect(maxPassiveEjections(10, 50)).toBe(5);
    expect(maxPassiveEjections(3, 50)).toBe(1);
    expect(maxPassiveEjections(1, 10)).toBe(1);
    expect(maxPassiveEjections(10, 0)).toBe(0);
    expect(maxPassiveEjections(10, 100)).toBe(10);
  });
});

describe("health knobs in the schema", () => {
  it("fills in defaults for a bare healthCheck and passiveHealth", async () => {
    const { validatePolicy } = await import("../../policies/schema.ts");
    const checked = validatePolicy({ mesh: "m", services: { web: { healthCheck: {}, passiveHealth: {}, registration: {} } } });
    if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
    const web = checked.document.services.web!;
    expect(web.healthCheck).toEqual({ path: "/healthz", intervalMs: 5000, timeoutMs: 1000, expectedStatus: [200], healthyThreshold: 2, unhealthyThreshold: 3 });
    expect(web.passiveHealth).toEqual({ windowMs: 10000, minRequests: 20, failurePercent: 50, ejectionMs: 30000 });
    expect(web.registration).toEqual({ leaseTtlMs: 30000 });
  });

  it("rejects a timeout longer than the interval and limits out of range, with paths", async () => {
    const { validatePolicy } = await import("../../policies/schema.ts");
    const checked = validatePolicy({
      mesh: "m",
      services: { web: { healthCheck: { intervalMs: 500, timeoutMs: 800, unhealthyThreshold: 0 }, registration: { leaseTtlMs: 10 } } },
    });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.errors.map((e) => e.path).sort()).toEqual([
      "$.services.web.healthCheck.timeoutMs",
      "$.services.web.healthCheck.unhealthyThreshold",
      "$.services.web.registration.leaseTtlMs",
    ]);
  });
});
