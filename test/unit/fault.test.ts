import { describe, expect, it } from "vitest";
import { decideFault, faultApplies } from "../../workers/sidecar/fault.ts";
import { compiledService, seeded } from "./resilience-fixtures.ts";

function faultOf(fault: Record<string, unknown>) {
  return compiledService({ subsets: { all: {} }, routes: [{ name: "r", to: [{ subset: "all" }], fault }] }).routes[0]!.fault!;
}

describe("fault injection", () => {
  it("delays and aborts the configured shares", () => {
    const f = faultOf({ delay: { percent: 10, ms: 50 }, abort: { percent: 25, status: 500 } });
    const random = seeded(3);
    let delayed = 0;
    let aborted = 0;
    for (let i = 0; i < 10_000; i++) {
      const d = decideFault(f, random);
      if (d.delayMs === 50) delayed++;
      if (d.abortStatus === 500) aborted++;
    }
    expect(delayed / 10_000).toBeGreaterThan(0.09);
    expect(delayed / 10_000).toBeLessThan(0.11);
    expect(aborted / 10_000).toBeGreaterThan(0.235);
    expect(aborted / 10_000).toBeLessThan(0.265);
  });

  it("targets only requests with the header (and value) when asked", () => {
    const any = faultOf({ abort: { percent: 100 }, onlyWithHeader: { name: "X-Chaos" } });
    expect(faultApplies(any, new Headers())).toBe(false);
    expect(faultApplies(any, new Headers({ "x-chaos": "whatever" }))).toBe(true);
    const exact = faultOf({ abort: { percent: 100 }, onlyWithHeader: { name: "x-chaos", value: "me" } });
    expect(faultApplies(exact, new Headers({ "x-chaos": "you" }))).toBe(false);
    expect(faultApplies(exact, new Headers({ "x-chaos": "me" }))).toBe(true);
    expect(faultApplies(faultOf({ abort: { percent: 1 } }), new Headers())).toBe(true);
  });
});
