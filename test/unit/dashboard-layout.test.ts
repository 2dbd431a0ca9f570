import { describe, expect, it } from "vitest";
import { boxExit, layoutTopology, type Layout } from "../../dashboard/src/layout.ts";

const BOOKINFO_EDGES = [
  { source: "external", destination: "productpage" },
  { source: "productpage", destination: "details" },
  { source: "productpage", destination: "reviews" },
  { source: "reviews", destination: "ratings" },
];
const SERVICES = ["productpage", "details", "reviews", "ratings"];

const layerOf = (layout: Layout) => Object.fromEntries(layout.nodes.map((n) => [n.id, n.layer]));

function boxesOverlap(layout: Layout): boolean {
  const { nodes, nodeWidth: w, nodeHeight: h } = layout;
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      if (Math.abs(nodes[i]!.x - nodes[j]!.x) < w && Math.abs(nodes[i]!.y - nodes[j]!.y) < h) return true;
    }
  }
  return false;
}

describe("layoutTopology", () => {
  it("layers bookinfo by call depth, external first", () => {
    const layout = layoutTopology(SERVICES, BOOKINFO_EDGES, "horizontal");
    expect(layerOf(layout)).toEqual({ external: 0, productpage: 1, details: 2, reviews: 2, ratings: 3 });
    const x = Object.fromEntries(layout.nodes.map((n) => [n.id, n.x]));
    expect(x.external!).toBeLessThan(x.productpage!);
    expect(x.productpage!).toBeLessThan(x.reviews!);
    expect(x.reviews!).toBeLessThan(x.ratings!);
    expect(boxesOverlap(layout)).toBe(false);
    expect(layout.edges.every((e) => e.kind === "forward")).toBe(true);
  });

  it("runs top to bottom when vertical, with labels beside their lines", () => {
    const layout = layoutTopology(SERVICES, BOOKINFO_EDGES, "vertical");
    const y = Object.fromEntries(layout.nodes.map((n) => [n.id, n.y]));
    expect(y.external!).toBeLessThan(y.productpage!);
    expect(y.productpage!).toBeLessThan(y.details!);
    expect(y.details).toBe(y.reviews);
    expect(boxesOverlap(layout)).toBe(false);
    const fanOut = layout.edges.filter((e) => e.source === "productpage");
    expect(new Set(fanOut.map((e) => e.labelAnchor))).toEqual(new Set(["start", "end"]));
  });

  it("gives the same picture whatever order services and edges come in", () => {
    const a = layoutTopology(SERVICES, BOOKINFO_EDGES, "horizontal");
    const b = layoutTopology([...SERVICES].reverse(), [...BOOKINFO_EDGES].reverse(), "horizontal");
    expect(b).toEqual(a);
  });

  it("keeps every node and label inside the view box", () => {
    for (const orientation of ["horizontal", "vertical"] as const) {
      const layout = layoutTopology(SERVICES, [...BOOKINFO_EDGES, { source: "ratings", destination: "productpage" }], orientation);
      const { x, y, width, height } = layout.viewBox;
      for (const n of layout.nodes) {
        expect(n.x - layout.nodeWidth / 2).toBeGreaterThanOrEqual(x);
        expect(n.x + layout.nodeWidth / 2).toBeLessThanOrEqual(x + width);
        expect(n.y - layout.nodeHeight / 2).toBeGreaterThanOrEqual(y);
        expect(n.y + layout.nodeHeight / 2).toBeLessThanOrEqual(y + height);
      }
      for (const e of layout.edges) {
        expect(e.label.y).toBeGreaterThan(y);
        expect(e.label.y).toBeLessThan(y + height);
      }
    }
  });

  it("breaks a cycle at one edge, drawn curved, and still layers the rest by depth", () => {
    const edges = [
      { source: "external", destination: "a" },
      { source: "a", destination: "b" },
      { source: "b", destination: "c" },
      { source: "c", destination: "a" },
    ];
    const layout = layoutTopology(["a", "b", "c"], edges, "horizontal");
    expect(layerOf(layout)).toEqual({ external: 0, a: 1, b: 2, c: 3 });
    const back = layout.edges.filter((e) => e.kind === "back");
    expect(back.map((e) => `${e.source}->${e.destination}`)).toEqual(["c->a"]);
    expect(back[0]!.path).toMatch(/ Q/);
  });

  it("bows a pair of opposite calls apart so both stay visible", () => {
    const layout = layoutTopology(["a", "b"], [{ source: "a", destination: "b" }, { source: "b", destination: "a" }], "horizontal");
    const [ab, ba] = [layout.edges.find((e) => e.source === "a")!, layout.edges.find((e) => e.source === "b")!];
    expect(ab.path).toMatch(/ Q/);
    expect(ba.path).toMatch(/ Q/);
    expect(ab.label.y).not.toBe(ba.label.y);
  });

  it("draws a service calling itself as a loop", () => {
    const layout = layoutTopology(["a"], [{ source: "a", destination: "a" }], "horizontal");
    expect(layout.edges[0]!.kind).toBe("self");
    expect(layout.edges[0]!.path).toMatch(/^M.* C/);
  });

  it("puts services without traffic after the ones with, and lays out a mesh with no traffic at all", () => {
    const some = layoutTopology([...SERVICES, "idle"], [{ source: "external", destination: "productpage" }], "horizontal");
    expect(layerOf(some).idle).toBe(2);
    expect(layerOf(some).productpage).toBe(1);
    const none = layoutTopology(SERVICES, [], "horizontal");
    expect(none.nodes.map((n) => n.layer)).toEqual([0, 0, 0, 0]);
    expect(boxesOverlap(none)).toBe(false);
  });

  it("orders a layer by its callers to avoid crossings", () => {
    // a calls y, b calls x: x should sit by b and y by a.
    const layout = layoutTopology(["a", "b", "x", "y"], [{ source: "a", destination: "y" }, { source: "b", destination: "x" }], "horizontal");
    const order = Object.fromEntries(layout.nodes.map((n) => [n.id, n.order]));
    expect(order.y).toBe(order.a);
    expect(order.x).toBe(order.b);
  });
});

describe("boxExit", () => {
  it("leaves a box through the side it points at", () => {
    expect(boxExit({ x: 0, y: 0 }, { x: 100, y: 0 }, 40, 20)).toEqual({ x: 20, y: 0 });
    expect(boxExit({ x: 0, y: 0 }, { x: 0, y: -100 }, 40, 20)).toEqual({ x: 0, y: -10 });
    const corner = boxExit({ x: 0, y: 0 }, { x: 100, y: 100 }, 40, 20);
    expect(corner).toEqual({ x: 10, y: 10 });
  });
});
