import { describe, expect, it } from "vitest";
import { buildMaglevTable } from "../../workers/sidecar/maglev.ts";

describe("maglev table", () => {
  it("gives every endpoint a near-equal share of slots", () => {
    const table = buildMaglevTable(["a", "b", "c", "d", "e", "f", "g"], 65_537);
    const share = new Array(7).fill(0);
    for (const i of table) share[i]++;
    for (const s of share) expect(Math.abs(s - 65_537 / 7)).toBeLessThan(65_537 / 7 * 0.02);
  });

  it("moves few slots between endpoints that stay when one is removed", () => {
    const ids = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    const before = buildMaglevTable(ids, 4099);
    const without = ids.filter((id) => id !== "d");
    const after = buildMaglevTable(without, 4099);
    let disrupted = 0;
    for (let s = 0; s < 4099; s++) {
      const was = ids[before[s]!]!;
      if (was !== "d" && without[after[s]!] !== was) disrupted++;
    }
    expect(disrupted / 4099).toBeLessThan(0.05);
  });
});
