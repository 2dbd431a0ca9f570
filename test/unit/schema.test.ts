import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { policyJsonSchema, validatePolicy } from "../../policies/schema.ts";
import { policyReference } from "../../scripts/export-schema.ts";

const bookinfo = JSON.parse(await readFile(new URL("../../policies/bookinfo.json", import.meta.url), "utf8"));

describe("policy schema", () => {
  it("accepts the example document and fills in defaults", () => {
    const result = validatePolicy(bookinfo);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const reviews = result.document.services.reviews!;
    expect(reviews.routes[0]!.timeoutMs).toBe(15_000);
    expect(reviews.routes[0]!.to[0]!.weight).toBe(100);
    expect(reviews.snapshotTtlMs).toBe(1000);
    expect(reviews.endpoints[0]!.weight).toBe(1);
  });

  it("rejects a document whole, with every error and its JSON path", () => {
    const bad = structuredClone(bookinfo);
    bad.services.reviews.routes[1].to[0].subset = "v9";
    bad.services.reviews.routes[0].match[0].headers["end-user"] = { regex: "([a-z" };
    bad.services.reviews.endpoints[1].url = "https://x.example";
    bad.services.details.routes = [{ name: "Bad Name", to: [{ subset: "v1" }] }];
    bad.services.ratings.endpoints.push({ id: "ratings-v1", binding: "RATINGS_V1" });
    const result = validatePolicy(bad);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const paths = result.errors.map((e) => e.path);
    expect(paths).toContain("$.services.reviews.routes[1].to[0].subset");
    expect(paths).toContain('$.services.reviews.routes[0].match[0].headers["end-user"].regex');
    expect(paths).toContain("$.services.reviews.endpoints[1]");
    expect(paths).toContain("$.services.details.routes[0].name");
    expect(paths).toContain("$.services.ratings.endpoints[1].id");
    const unknownSubset = result.errors.find((e) => e.path === "$.services.reviews.routes[1].to[0].subset")!;
    expect(unknownSubset.message).toMatch(/unknown subset "v9"; defined subsets: v1, v2, v3/);
  });

  it("refuses unknown fields rather than ignoring a typo", () => {
    const bad = structuredClone(bookinfo);
    bad.services.reviews.routes[1].timeoutMS = 100;
    const result = validatePolicy(bad);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]!.path).toBe("$.services.reviews.routes[1]");
  });

  it("needs exactly one match kind and exactly one of binding or url", () => {
    const doc = {
      mesh: "m",
      services: {
        a: {
          endpoints: [{ id: "a1" }, { id: "a2", binding: "A2", url: "https://a.example" }],
          routes: [{ name: "r", match: [{ path: { exact: "/x", prefix: "/y" } }], to: [{ subset: "all" }] }],
          subsets: { all: {} },
        },
      },
    };
    const result = validatePolicy(doc);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path).sort()).toEqual(
      ["$.services.a.endpoints[0]", "$.services.a.endpoints[1]", "$.services.a.routes[0].match[0].path"].sort(),
    );
  });

  it("rejects weights that are all zero and timeouts out of range", () => {
    const doc = structuredClone(bookinfo);
    doc.services.reviews.routes[1].to = [{ subset: "v1", weight: 0 }];
    doc.services.reviews.routes[1].timeoutMs = 0;
    const result = validatePolicy(doc);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.map((e) => e.path).sort()).toEqual(["$.services.reviews.routes[1].timeoutMs", "$.services.reviews.routes[1].to"]);
  });

  it("keeps policies/policy.schema.json and docs/policy-reference.md in step with the schema (run `npm run schema`)", async () => {
    const onDisk = JSON.parse(await readFile(new URL("../../policies/policy.schema.json", import.meta.url), "utf8"));
    expect(onDisk).toEqual(policyJsonSchema());
    const reference = await readFile(new URL("../../docs/policy-reference.md", import.meta.url), "utf8");
    expect(reference).toBe(policyReference());
  });
});
