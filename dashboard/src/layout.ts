// Lays the mesh out in layers by call depth: callers before callees, `external` first, so a
// request reads left to right (or top to bottom on a narrow screen). Cycles are broken at the
// edges a depth-first walk finds going back; those are drawn as curves. Within a layer, nodes are
// ordered by the mean position of their neighbours (a few barycentre sweeps) to cut crossings.
// Pure: plain data in, coordinates out, unit-tested without a browser.

export type Orientation = "horizontal" | "vertical";

export interface LayoutEdgeInput {
  source: string;
  destination: string;
}

export interface PlacedNode {
  id: string;
  layer: number;
  /** Position within the layer, from the top (horizontal) or the left (vertical). */
  order: number;
  /** The centre of the node's box. */
  x: number;
  y: number;
}

export interface Point {
  x: number;
  y: number;
}

export interface PlacedEdge {
  source: string;
  destination: string;
  /** forward: to a later layer; back: to the same or an earlier layer (a cycle); self: a loop. */
  kind: "forward" | "back" | "self";
  /** An SVG path from the source box's border to the destination box's border. */
  path: string;
  /** Where the edge's label goes, and which way its text runs from there (SVG text-anchor). */
  label: Point;
  labelAnchor: "middle" | "start" | "end";
  /** Points the drawing reaches besides its ends (a curve's control points), for the bounds. */
  reach: Point[];
}

/** Room a two-line edge label needs around its centre. */
export const LABEL_HALF_WIDTH = 52;
export const LABEL_HALF_HEIGHT = 16;

export interface Layout {
  orientation: Orientation;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  /** The area everything is drawn in, labels and curves included: the SVG's viewBox. */
  viewBox: { x: number; y: number; width: number; height: number };
  nodeWidth: number;
  nodeHeight: number;
}

export const EXTERNAL = "external";

const GEOMETRY: Record<Orientation, { nodeWidth: number; nodeHeight: number; layerGap: number; rowGap: number; margin: number }> = {
  // layerGap leaves room for a two-line edge label between two boxes.
  horizontal: { nodeWidth: 168, nodeHeight: 60, layerGap: 300, rowGap: 108, margin: 16 },
  vertical: { nodeWidth: 168, nodeHeight: 60, layerGap: 150, rowGap: 184, margin: 8 },
};

/** external first, then by name: the same input always gives the same picture. */
function byName(a: string, b: string): number {
  if (a === b) return 0;
  if (a === EXTERNAL) return -1;
  if (b === EXTERNAL) return 1;
  return a < b ? -1 : 1;
}

/** Edges that close a cycle, found by a depth-first walk from the roots in name order. */
function backEdges(nodes: string[], out: Map<string, string[]>, hasIncoming: Set<string>): Set<string> {
  const state = new Map<string, "open" | "done">();
  const back = new Set<string>();
  const visit = (start: string) => {
    // Iterative, so a deep chain cannot overflow the stack.
    const stack: { node: string; next: number }[] = [{ node: start, next: 0 }];
    state.set(start, "open");
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const targets = out.get(top.node) ?? [];
      if (top.next >= targets.length) {
        state.set(top.node, "done");
        stack.pop();
        continue;
      }
      const target = targets[top.next++]!;
      const seen = state.get(target);
      if (seen === "open") back.add(`${top.node}\u0000${target}`);
      else if (seen === undefined) {
        state.set(target, "open");
        stack.push({ node: target, next: 0 });
      }
    }
  };
  for (const n of nodes) if (!hasIncoming.has(n) && !state.has(n)) visit(n);
  for (const n of nodes) if (!state.has(n)) visit(n);
  return back;
}

export function layoutTopology(nodeIds: string[], edgeInputs: LayoutEdgeInput[], orientation: Orientation): Layout {
  const g = GEOMETRY[orientation];
  const nodes = [...new Set([...nodeIds, ...edgeInputs.flatMap((e) => [e.source, e.destination])])].sort(byName);
  const edgeKeys = new Set<string>();
  const edges: LayoutEdgeInput[] = [];
  for (const e of edgeInputs) {
    const key = `${e.source}\u0000${e.destination}`;
    if (!edgeKeys.has(key)) {
      edgeKeys.add(key);
      edges.push({ source: e.source, destination: e.destination });
    }
  }
  edges.sort((a, b) => byName(a.source, b.source) || byName(a.destination, b.destination));

  const out = new Map<string, string[]>();
  const hasIncoming = new Set<string>();
  const connected = new Set<string>();
  for (const e of edges) {
    connected.add(e.source).add(e.destination);
    if (e.source === e.destination) continue;
    out.set(e.source, [...(out.get(e.source) ?? []), e.destination]);
    hasIncoming.add(e.destination);
  }
  const back = backEdges(nodes, out, hasIncoming);
  const forward = edges.filter((e) => e.source !== e.destination && !back.has(`${e.source}\u0000${e.destination}`));

  // Longest path from a root over the forward edges (a DAG), in topological order.
  const layer = new Map<string, number>(nodes.map((n) => [n, 0]));
  const indegree = new Map<string, number>(nodes.map((n) => [n, 0]));
  for (const e of forward) indegree.set(e.destination, indegree.get(e.destination)! + 1);
  const ready = nodes.filter((n) => indegree.get(n) === 0);
  while (ready.length > 0) {
    const n = ready.shift()!;
    for (const e of forward) {
      if (e.source !== n) continue;
      layer.set(e.destination, Math.max(layer.get(e.destination)!, layer.get(n)! + 1));
      indegree.set(e.destination, indegree.get(e.destination)! - 1);
      if (indegree.get(e.destination) === 0) ready.push(e.destination);
    }
  }
  // Services nobody called yet stand apart, after the ones with traffic.
  const deepest = Math.max(0, ...nodes.filter((n) => connected.has(n)).map((n) => layer.get(n)!));
  if (connected.size > 0) for (const n of nodes) if (!connected.has(n)) layer.set(n, deepest + 1);

  const layerCount = Math.max(...nodes.map((n) => layer.get(n)!), 0) + 1;
  const layers: string[][] = Array.from({ length: layerCount }, () => []);
  for (const n of nodes) layers[layer.get(n)!]!.push(n);

  // Barycentre sweeps: down by callers, up by callees.
  const position = new Map<string, number>();
  const remember = () => layers.forEach((l) => l.forEach((n, i) => position.set(n, i)));
  remember();
  const neighbours = (n: string, dir: "in" | "out") => forward.filter((e) => (dir === "in" ? e.destination === n : e.source === n)).map((e) => (dir === "in" ? e.source : e.destination));
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? layers.map((_, i) => i) : layers.map((_, i) => layerCount - 1 - i);
    for (const li of order) {
      const current = layers[li]!;
      const centre = new Map<string, number>();
      for (const n of current) {
        const near = neighbours(n, down ? "in" : "out");
        centre.set(n, near.length > 0 ? near.reduce((s, m) => s + position.get(m)!, 0) / near.length : position.get(n)!);
      }
      current.sort((a, b) => centre.get(a)! - centre.get(b)! || position.get(a)! - position.get(b)!);
      current.forEach((n, i) => position.set(n, i));
    }
  }

  const widest = Math.max(1, ...layers.map((l) => l.length));
  const placed: PlacedNode[] = [];
  const at = new Map<string, PlacedNode>();
  layers.forEach((members, li) => {
    const offset = ((widest - members.length) * g.rowGap) / 2;
    members.forEach((id, order) => {
      const along = g.margin + li * g.layerGap + (orientation === "horizontal" ? g.nodeWidth : g.nodeHeight) / 2;
      const across = g.margin + offset + order * g.rowGap + (orientation === "horizontal" ? g.nodeHeight : g.nodeWidth) / 2;
      const node: PlacedNode = orientation === "horizontal" ? { id, layer: li, order, x: along, y: across } : { id, layer: li, order, x: across, y: along };
      placed.push(node);
      at.set(id, node);
    });
  });

  const placedEdges = edges.map((e): PlacedEdge => {
    const from = at.get(e.source)!;
    const to = at.get(e.destination)!;
    if (e.source === e.destination) return selfLoop(e, from, g.nodeWidth, g.nodeHeight);
    const kind = back.has(`${e.source}\u0000${e.destination}`) ? "back" : "forward";
    const span = Math.abs(to.layer - from.layer);
    const reverse = edgeKeys.has(`${e.destination}\u0000${e.source}`);
    // Curve edges that would overlap: a pair in both directions, cycles, and edges that skip a
    // layer (a straight line would cross the nodes between).
    const bend = kind === "back" ? 0.35 : reverse ? 0.12 : span > 1 ? 0.18 : 0;
    return curvedEdge(e, from, to, kind, bend, g.nodeWidth, g.nodeHeight, orientation);
  });

  return { orientation, nodes: placed, edges: placedEdges, viewBox: bounds(placed, placedEdges, g.nodeWidth, g.nodeHeight, g.margin), nodeWidth: g.nodeWidth, nodeHeight: g.nodeHeight };
}

function bounds(nodes: PlacedNode[], edges: PlacedEdge[], w: number, h: number, margin: number): Layout["viewBox"] {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  const take = (x: number, y: number) => {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  };
  for (const n of nodes) {
    take(n.x - w / 2, n.y - h / 2);
    take(n.x + w / 2, n.y + h / 2);
  }
  for (const e of edges) {
    const left = e.labelAnchor === "start" ? e.label.x : e.labelAnchor === "end" ? e.label.x - 2 * LABEL_HALF_WIDTH : e.label.x - LABEL_HALF_WIDTH;
    take(left, e.label.y - LABEL_HALF_HEIGHT);
    take(left + 2 * LABEL_HALF_WIDTH, e.label.y + LABEL_HALF_HEIGHT);
    // A quadratic curve stays within half way to its control point.
    for (const p of e.reach) take(p.x, p.y);
  }
  if (nodes.length === 0) return { x: 0, y: 0, width: w + margin * 2, height: h + margin * 2 };
  return { x: round(minX - margin), y: round(minY - margin), width: round(maxX - minX + margin * 2), height: round(maxY - minY + margin * 2) };
}

/** Where the ray from a box's centre towards `toward` leaves the box. */
export function boxExit(centre: Point, toward: Point, width: number, height: number): Point {
  const dx = toward.x - centre.x;
  const dy = toward.y - centre.y;
  if (dx === 0 && dy === 0) return centre;
  const scale = Math.min(dx === 0 ? Infinity : width / 2 / Math.abs(dx), dy === 0 ? Infinity : height / 2 / Math.abs(dy));
  return { x: centre.x + dx * scale, y: centre.y + dy * scale };
}

const round = (n: number) => Math.round(n * 10) / 10;

function curvedEdge(e: LayoutEdgeInput, from: PlacedNode, to: PlacedNode, kind: PlacedEdge["kind"], bend: number, w: number, h: number, orientation: Orientation): PlacedEdge {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.hypot(dx, dy);
  // The control point sits off the midpoint, to the right of the direction of travel, so a pair
  // of opposite edges bows apart.
  const control = { x: (from.x + to.x) / 2 - (dy / length) * length * bend, y: (from.y + to.y) / 2 + (dx / length) * length * bend };
  const start = boxExit(from, bend === 0 ? to : control, w, h);
  const end = boxExit(to, bend === 0 ? from : control, w, h);
  // A label at 55% sits nearer the callee, so labels of edges fanning out of one node separate.
  const t = 0.55;
  const label =
    bend === 0
      ? { x: start.x + (end.x - start.x) * t, y: start.y + (end.y - start.y) * t }
      : {
          x: (1 - t) ** 2 * start.x + 2 * (1 - t) * t * control.x + t ** 2 * end.x,
          y: (1 - t) ** 2 * start.y + 2 * (1 - t) * t * control.y + t ** 2 * end.y,
        };
  const path =
    bend === 0
      ? `M${round(start.x)},${round(start.y)} L${round(end.x)},${round(end.y)}`
      : `M${round(start.x)},${round(start.y)} Q${round(control.x)},${round(control.y)} ${round(end.x)},${round(end.y)}`;
  const reach = bend === 0 ? [] : [{ x: (start.x + end.x) / 4 + control.x / 2, y: (start.y + end.y) / 4 + control.y / 2 }];
  // Running across the layers, a label straddles its line (one text line above, one below).
  // Running down, the line would cut through the text: the label goes beside it, on the side
  // the edge leans to, so the labels of edges fanning out of one node face away from each other.
  if (orientation === "vertical") {
    const leansLeft = end.x < start.x - 1;
    const side = leansLeft ? -10 : 10;
    return { source: e.source, destination: e.destination, kind, path, label: { x: round(label.x + side), y: round(label.y) }, labelAnchor: leansLeft ? "end" : "start", reach };
  }
  return { source: e.source, destination: e.destination, kind, path, label: { x: round(label.x), y: round(label.y) }, labelAnchor: "middle", reach };
}

function selfLoop(e: LayoutEdgeInput, node: PlacedNode, w: number, h: number): PlacedEdge {
  const top = node.y - h / 2;
  const x1 = node.x + w / 4;
  const x2 = node.x + w / 2 - 8;
  return {
    source: e.source,
    destination: e.destination,
    kind: "self",
    path: `M${round(x1)},${round(top)} C${round(x1)},${round(top - 36)} ${round(x2 + 30)},${round(top - 36)} ${round(x2)},${round(top)}`,
    label: { x: round(node.x + w / 2), y: round(top - 30) },
    labelAnchor: "middle",
    reach: [{ x: x2 + 30, y: top - 27 }],
  };
}
