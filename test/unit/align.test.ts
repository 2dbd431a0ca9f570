import { describe, expect, it } from "vitest";
import { alignForward, newAlignment } from "../../workers/sidecar/align.ts";

describe("which snapshot the per-isolate state follows", () => {
  it("moves to later generations only", () => {
    const a = newAlignment();
    expect(alignForward(a, { epoch: "e1", generation: 3 })).toBe(true);
    expect(alignForward(a, { epoch: "e1", generation: 3 })).toBe(false);
    expect(alignForward(a, { epoch: "e1", generation: 2 })).toBe(false);
    expect(alignForward(a, { epoch: "e1", generation: 4 })).toBe(true);
  });

  it("moves to a new epoch (a reset control plane counts from 1 again), never back to a left one", () => {
    const a = newAlignment();
    alignForward(a, { epoch: "e1", generation: 40 });
    expect(alignForward(a, { epoch: "e2", generation: 1 })).toBe(true);
    expect(alignForward(a, { epoch: "e1", generation: 40 })).toBe(false);
    expect(alignForward(a, { epoch: "e2", generation: 2 })).toBe(true);
  });
});
