// The local store accepts only what Analytics Engine would: its limits on blobs, doubles and index.
import { describe, expect, it } from "vitest";
import { MAX_BLOB_BYTES, rowProblem } from "../../analytics/row-check.ts";
import type { AnalyticsRow } from "../../analytics/types.ts";

const good: AnalyticsRow = { dataset: "mesh", timestampMs: 1714564800000, sampleInterval: 1, index1: "reviews", blobs: ["a", "b"], doubles: [1, 2.5] };

describe("rowProblem", () => {
  it("accepts a well-formed row", () => {
    expect(rowProblem(good)).toBeNull();
    expect(rowProblem({ ...good, blobs: Array(20).fill("x"), doubles: Array(20).fill(0), index1: "é".repeat(48) })).toBeNull();
  });

  it("names what is wrong", () => {
    const cases: [Partial<AnalyticsRow> | Record<string, unknown>, string][] = [
      [{ dataset: "" }, "dataset"],
      [{ timestampMs: NaN }, "timestampMs"],
      [{ sampleInterval: 0 }, "sampleInterval"],
      [{ sampleInterval: 1.5 }, "sampleInterval"],
      [{ index1: "é".repeat(49) }, "index1 is longer than 96 bytes"],
      [{ blobs: Array(21).fill("x") }, "at most 20"],
      [{ blobs: [1] }, "every blob"],
      [{ blobs: ["x".repeat(MAX_BLOB_BYTES + 1)] }, "blobs total"],
      [{ doubles: Array(21).fill(0) }, "at most 20"],
      [{ doubles: [Infinity] }, "every double"],
      [{ doubles: ["1"] }, "every double"],
    ];
    for (const [change, problem] of cases) expect(rowProblem({ ...good, ...change } as AnalyticsRow)).toContain(problem);
    expect(rowProblem(null as unknown as AnalyticsRow)).toBe("not an object");
  });
});
