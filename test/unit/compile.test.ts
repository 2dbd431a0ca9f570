import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy, type PolicyDocument } from "../../policies/schema.ts";
import { diffJson } from "../../policies/diff.ts";

const bookinfo = JSON.parse(await readFile(new URL("../../policies/bookinfo.json", import.meta.url), "utf8"));

function valid(doc: unknown): PolicyDocument {
  const r = validatePolicy(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.document;
}

describe("compiler", () => {
  it("turns weights into a cumulative table and subsets into endpoint indexes", () => {
    const mesh = compilePolicy(valid(bookinfo));
    const reviews = mesh.services.reviews!;
    expect(reviews.subsets).toEqual({ "*": [0, 1, 2], v1: [0], v2: [1], v3: [2] });
    const def = reviews.routes.find((r) => r.name === "default")!;
    expect(def.split).toEqual({ subsets: ["v1", "v3"], cumulative: [90, 100], total: 100 });
    expect(reviews.routes.map((r) => r.name)).toEqual(["jason", "default"]);
  });

  it("lower-cases header names and anchors regexes", () => {
    const doc = valid({
      mesh: "m",
      services: {
        a: {
          endpoints: [{ id: "a1", binding: "A1" }],
          subsets: { all: {} },
          routes: [{ name: "r", match: [{ headers: { "X-User": { regex: "a|b" } }, path: { prefix: "/api" } }], to: [{ subset: "all" }] }],
        },
      },
    });
    const m = compilePolicy(doc).services.a!.routes[0]!.matches[0]!;
    expect(m.headers).toEqual([{ name: "x-user", kind: "regex", value: "^(?:a|b)$" }]);
    expect(m.path).toEqual({ kind: "prefix", value: "/api" });
  });

  it("drops zero-weight destinations and gives a service with no routes a catch-all", () => {
    const doc = structuredClone(bookinfo);
    doc.services.reviews.routes[1].to = [{ subset: "v1", weight: 0 }, { subset: "v2", weight: 3 }];
    const mesh = compilePolicy(valid(doc));
    expect(mesh.services.reviews!.routes[1]!.split).toEqual({ subsets: ["v2"], cumulative: [3], total: 3 });
    expect(mesh.services.details!.routes).toHaveLength(1);
    expect(mesh.services.details!.routes[0]).toMatchObject({ name: "default", matches: [], split: { subsets: ["*"], cumulative: [1], total: 1 }, timeoutMs: 15_000 });
  });

  it("merges registered endpoints after declared ones, into the subsets their labels select", () => {
    const mesh = compilePolicy(valid(bookinfo), { reviews: [{ id: "reviews-v3-b", url: "https://r3b.example", labels: { version: "v3" }, weight: 1 }] });
    expect(mesh.services.reviews!.subsets.v3).toEqual([2, 3]);
    expect(mesh.services.reviews!.endpoints[3]!.url).toBe("https://r3b.example");
  });
});

describe("diff", () => {
  it("names each changed, added and removed path", () => {
    const a = { mesh: "m", services: { a: { routes: [{ name: "x", timeoutMs: 1 }] } } };
    const b = { mesh: "m", services: { a: { routes: [{ name: "x", timeoutMs: 2 }, { name: "y" }] }, b: {} } };
    expect(diffJson(a, b)).toEqual([
      { path: "$.services.a.routes[0].timeoutMs", op: "changed", from: 1, to: 2 },
      { path: "$.services.a.routes[1]", op: "added", to: { name: "y" } },
      { path: "$.services.b", op: "added", to: {} },
    ]);
    expect(diffJson(b, b)).toEqual([]);
  });
});
