// The names sidecars and the control plane agree on for the distribution tier.
import { describe, expect, it } from "vitest";
import { meshOfRelay, relayName, relayRegion, relayShard, snapshotCacheKey } from "../../policies/distribution.ts";

describe("relay regions", () => {
  it("follows the continent, split east and west where Cloudflare has two hints", () => {
    expect(relayRegion({ continent: "NA", longitude: "-122.4" })).toBe("wnam");
    expect(relayRegion({ continent: "NA", longitude: "-74.0" })).toBe("enam");
    expect(relayRegion({ continent: "EU", longitude: "2.35" })).toBe("weur");
    expect(relayRegion({ continent: "EU", longitude: "21.0" })).toBe("eeur");
    expect(relayRegion({ continent: "AS", country: "JP" })).toBe("apac");
    expect(relayRegion({ continent: "AS", country: "AE" })).toBe("me");
    expect(relayRegion({ continent: "SA" })).toBe("sam");
    expect(relayRegion({ continent: "OC" })).toBe("oc");
    expect(relayRegion({ continent: "AF" })).toBe("afr");
  });

  it("uses enam where it knows nothing (local runs, no cf object)", () => {
    expect(relayRegion(undefined)).toBe("enam");
    expect(relayRegion({ continent: "AN" })).toBe("enam");
    expect(relayRegion({ continent: "NA", longitude: "not a number" })).toBe("enam");
  });
});

describe("relay shards and names", () => {
  it("puts one service and colo on one shard every time, and spreads colos over the shards", () => {
    expect(relayShard("reviews", "AMS", 8)).toBe(relayShard("reviews", "AMS", 8));
    const shards = new Set(["AMS", "FRA", "LHR", "CDG", "MAD", "WAW", "ARN", "MXP", "DUB", "BRU", "ZRH", "VIE"].map((colo) => relayShard("reviews", colo, 8)));
    expect(shards.size).toBeGreaterThan(3);
    for (const s of shards) expect(s).toBeGreaterThanOrEqual(0);
    for (const s of shards) expect(s).toBeLessThan(8);
  });

  it("treats a bad shard count as one shard", () => {
    expect(relayShard("reviews", "AMS", 0)).toBe(0);
    expect(relayShard("reviews", "AMS", Number.NaN)).toBe(0);
  });

  it("names a relay so that it knows its mesh", () => {
    const name = relayName("bookinfo", "weur", 3);
    expect(name).toBe("bookinfo/weur/3");
    expect(meshOfRelay(name)).toBe("bookinfo");
    expect(meshOfRelay("plain")).toBe("plain");
  });

  it("keys the colo's snapshot copy by mesh and service", () => {
    expect(snapshotCacheKey("m", "a b")).toBe("https://snapshot.edgemesh.internal/m/a%20b");
  });
});
