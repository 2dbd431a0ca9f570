// The topology: every service a node, every observed call an arrow labelled with its request
// rate, success rate and p99, coloured by health. Structure (policy, registry, health) reloads
// when the watch stream reports a change; metrics are polled.
import { ApiError } from "./api.ts";
import type { AppContext, Page } from "./context.ts";
import { STRUCTURE_EVENTS } from "./context.ts";
import { h, fill, s, table } from "./dom.ts";
import { keepingFocus } from "./focus.ts";
import { formatMs, formatPercent, formatRate, formatTime, metricsLine } from "./format.ts";
import { HEALTH_LABEL, serviceHealth, trafficHealth, type HealthClass } from "./health.ts";
import { EXTERNAL, layoutTopology, type Orientation } from "./layout.ts";
import { Poller } from "./poll.ts";
import type { GoldenMetrics, HealthAnswer, MetricsAnswer, PolicyAnswer, RegistryAnswer } from "./types.ts";

/** Below this width the graph runs top to bottom. */
const NARROW_PX = 720;
const STRUCTURE_EVERY_MS = 30_000;
/** The mean advance of an edge label character at 11px. */
const LABEL_CHAR_PX = 6.1;

export const HEALTH_MARK: Record<HealthClass, string> = { healthy: "✓", degraded: "!", failing: "✕", idle: "–" };

interface Structure {
  services: string[];
  endpoints: Map<string, { id: string; excluded: boolean }[]>;
  policyVersion: number | null;
}

interface Metrics {
  services: Map<string, GoldenMetrics>;
  edges: GoldenMetrics[];
  atMs: number;
}

const edgeKey = (m: GoldenMetrics) => `${m.labels.source}->${m.labels.destination}`;

export async function loadStructure(ctx: AppContext): Promise<Structure> {
  const [policy, registry, health] = await Promise.all([
    ctx.api.get<PolicyAnswer>("/v1/policy").catch((err: unknown) => {
      // No policy yet (404) or one that no longer loads (500): draw what the registry knows.
      if (err instanceof ApiError && (err.status === 404 || err.status === 500)) return null;
      throw err;
    }),
    ctx.api.get<RegistryAnswer>("/v1/registry"),
    ctx.api.get<HealthAnswer>("/v1/health"),
  ]);
  const services = new Set([...Object.keys(policy?.document.services ?? {}), ...Object.keys(registry.services)]);
  const endpoints = new Map<string, { id: string; excluded: boolean }[]>();
  for (const e of health.endpoints) endpoints.set(e.service, [...(endpoints.get(e.service) ?? []), { id: e.endpointId, excluded: e.excluded }]);
  return { services: [...services].sort(), endpoints, policyVersion: policy?.version ?? null };
}

async function loadMetrics(ctx: AppContext): Promise<Metrics> {
  const w = ctx.window().text;
  const [services, edges] = await Promise.all([
    ctx.api.get<MetricsAnswer>(`/v1/metrics/services?window=${w}`),
    ctx.api.get<MetricsAnswer>(`/v1/metrics/edges?window=${w}`),
  ]);
  return {
    services: new Map((services.services ?? []).map((m) => [m.labels.service ?? "", m])),
    edges: edges.edges ?? [],
    atMs: Date.now(),
  };
}

export function topologyPage(ctx: AppContext): Page {
  let structure: Structure | null = null;
  let metrics: Metrics | null = null;
  let metricsError = "";
  let structureError = "";

  const heading = h("h1", { tabindex: -1 }, "Topology");
  const intro = h("p", { class: "intro" });
  const notice = h("div", { class: "notice", role: "status" });
  const svg = s("svg", { class: "topology", role: "group", "aria-labelledby": "topology-title" });
  const figure = h(
    "figure",
    { class: "topology-figure" },
    h("figcaption", { id: "topology-title", class: "visually-hidden" }, "Service graph: services as nodes, calls as arrows"),
    svg,
  );
  const legend = h(
    "ul",
    { class: "legend", "aria-label": "Colours" },
    (["healthy", "degraded", "failing", "idle"] as HealthClass[]).map((c) =>
      h("li", {}, h("span", { class: `swatch health-${c}`, "aria-hidden": "true" }, HEALTH_MARK[c]), ` ${HEALTH_LABEL[c]}`, h("span", { class: "legend-note" }, legendNote(c))),
    ),
  );
  const servicesRegion = h("section", { "aria-labelledby": "services-title", class: "card" });
  const edgesRegion = h("section", { "aria-labelledby": "edges-title", class: "card" });
  const root = h(
    "section",
    { class: "page page-topology" },
    heading,
    intro,
    notice,
    figure,
    legend,
    servicesRegion,
    edgesRegion,
  );

  const view = new GraphView(svg);
  const render = () => {
    const w = ctx.window();
    fill(intro, `Every service and every call observed in the ${w.label}. Arrows read: requests per second · success rate · p99 latency.`, metrics ? ` Updated ${formatTime(metrics.atMs, Date.now())} UTC.` : "");
    fill(notice, structureError ? h("p", { class: "error" }, `Could not read the mesh: ${structureError}`) : "", metricsError ? h("p", { class: "error" }, `Live metrics are unavailable: ${metricsError}`) : "");
    if (!structure) return;
    const orientation: Orientation = figure.clientWidth > 0 && figure.clientWidth < NARROW_PX ? "vertical" : "horizontal";
    view.render(structure, metrics, orientation);
    keepingFocus(servicesRegion, () => fill(servicesRegion, h("h2", { id: "services-title" }, "Services"), servicesTable(structure!, metrics)));
    keepingFocus(edgesRegion, () => fill(edgesRegion, h("h2", { id: "edges-title" }, "Calls"), edgesTable(metrics)));
  };

  const structurePoll = new Poller(async () => {
    try {
      structure = await loadStructure(ctx);
      structureError = "";
    } catch (err) {
      structureError = (err as Error).message;
    }
    render();
  }, STRUCTURE_EVERY_MS);
  const metricsPoll = new Poller(async () => {
    try {
      metrics = await loadMetrics(ctx);
      metricsError = "";
    } catch (err) {
      metricsError = (err as Error).message;
    }
    render();
  });

  const offEvent = ctx.onEvent((e) => {
    if (STRUCTURE_EVENTS.has(e.type)) structurePoll.now();
  });
  const offWindow = ctx.onWindowChange(() => metricsPoll.now());
  let lastWidth = 0;
  const resize = new ResizeObserver(() => {
    if (Math.abs(figure.clientWidth - lastWidth) < 8) return;
    lastWidth = figure.clientWidth;
    render();
  });
  resize.observe(figure);

  return {
    root,
    dispose() {
      structurePoll.stop();
      metricsPoll.stop();
      offEvent();
      offWindow();
      resize.disconnect();
    },
  };
}

function legendNote(c: HealthClass): string {
  if (c === "healthy") return " (≥ 99% success)";
  if (c === "degraded") return " (95–99% success, or some endpoints out)";
  if (c === "failing") return " (< 95% success, or every endpoint out)";
  return "";
}

function nodeHealth(structure: Structure, metrics: Metrics | null, service: string): HealthClass {
  return serviceHealth(metrics?.services.get(service), structure.endpoints.get(service) ?? []);
}

/** Draws the graph; while its shape stays the same it only updates texts and colours, so focus stays put. */
class GraphView {
  private shapeKey = "";
  private nodes = new Map<string, { link: SVGElement; metrics: SVGTextElement; mark: SVGTextElement }>();
  private edges = new Map<string, { group: SVGGElement; line1: SVGTSpanElement; line2: SVGTSpanElement; title: SVGTitleElement; plate: SVGRectElement; anchor: string; at: { x: number; y: number } }>();

  constructor(private readonly svg: SVGSVGElement) {}

  render(structure: Structure, metrics: Metrics | null, orientation: Orientation): void {
    const edgeList = metrics?.edges ?? [];
    const nodeIds = [...structure.services];
    const shape = `${orientation}|${nodeIds.join(",")}|${edgeList.map(edgeKey).sort().join(",")}`;
    if (shape !== this.shapeKey) {
      this.shapeKey = shape;
      keepingFocus(this.svg, () => this.build(nodeIds, edgeList, orientation));
    }
    this.update(structure, metrics);
  }

  private build(nodeIds: string[], edgeList: GoldenMetrics[], orientation: Orientation): void {
    const layout = layoutTopology(
      nodeIds,
      edgeList.map((m) => ({ source: m.labels.source ?? "", destination: m.labels.destination ?? "" })),
      orientation,
    );
    const { x, y, width, height } = layout.viewBox;
    this.svg.setAttribute("viewBox", `${x} ${y} ${width} ${height}`);
    this.svg.setAttribute("width", String(width));
    this.svg.setAttribute("data-orientation", orientation);
    this.svg.style.maxWidth = `${width}px`;
    this.nodes.clear();
    this.edges.clear();
    const markers = s(
      "defs",
      {},
      (["healthy", "degraded", "failing", "idle"] as HealthClass[]).map((c) =>
        s("marker", { id: `arrow-${c}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse", class: `arrow health-${c}` }, s("path", { d: "M0,0 L10,5 L0,10 z" })),
      ),
    );
    const edgeGroups = layout.edges.map((e) => {
      const key = `${e.source}->${e.destination}`;
      const line1 = s("tspan", { x: e.label.x, dy: "-0.2em" });
      const line2 = s("tspan", { x: e.label.x, dy: "1.2em" });
      const title = s("title");
      const plate = s("rect", { class: "edge-plate", rx: 4, height: 30, y: e.label.y - 15, width: 0, x: e.label.x });
      const group = s(
        "g",
        { class: "edge", "data-edge": key, "data-kind": e.kind },
        title,
        s("path", { d: e.path, class: "edge-line" }),
        plate,
        s("text", { x: e.label.x, y: e.label.y, class: "edge-label", "text-anchor": e.labelAnchor }, line1, line2),
      );
      this.edges.set(key, { group, line1, line2, title, plate, anchor: e.labelAnchor, at: e.label });
      return group;
    });
    const w = layout.nodeWidth;
    const hgt = layout.nodeHeight;
    const nodeGroups = layout.nodes.map((n) => {
      const external = n.id === EXTERNAL;
      const mark = s("text", { x: n.x - w / 2 + 12, y: n.y - 6, class: "node-mark", "aria-hidden": "true" });
      const metricsText = s("text", { x: n.x, y: n.y + 15, class: "node-metrics", "text-anchor": "middle" });
      const box = external
        ? s("rect", { x: n.x - w / 2, y: n.y - hgt / 2, width: w, height: hgt, rx: hgt / 2, class: "node-box external" })
        : s("rect", { x: n.x - w / 2, y: n.y - hgt / 2, width: w, height: hgt, rx: 8, class: "node-box" });
      const name = s("text", { x: n.x, y: n.y - 4, class: "node-name", "text-anchor": "middle" }, external ? "external" : n.id);
      const children = [box, external ? null : mark, name, metricsText];
      const link = external
        ? s("g", { class: "node node-external", "data-service": n.id }, s("title", {}, "Callers from outside the mesh"), children)
        : s("a", { href: `#/service/${encodeURIComponent(n.id)}`, class: "node", "data-service": n.id, "data-key": `node:${n.id}` }, children);
      this.nodes.set(n.id, { link, metrics: metricsText, mark });
      return link;
    });
    fill(this.svg, markers, s("g", { class: "edges" }, edgeGroups), s("g", { class: "nodes" }, nodeGroups));
  }

  private update(structure: Structure, metrics: Metrics | null): void {
    for (const [id, node] of this.nodes) {
      if (id === EXTERNAL) {
        const out = (metrics?.edges ?? []).filter((m) => m.labels.source === EXTERNAL).reduce((sum, m) => sum + m.requestsPerSecond, 0);
        fill(node.metrics, `${formatRate(out)} into the mesh`);
        continue;
      }
      const m = metrics?.services.get(id);
      const health = nodeHealth(structure, metrics, id);
      const endpoints = structure.endpoints.get(id) ?? [];
      const out = endpoints.filter((e) => e.excluded).length;
      node.link.setAttribute("class", `node health-${health}`);
      node.link.setAttribute("data-health", health);
      node.link.setAttribute("data-requests", String(m?.requests ?? 0));
      fill(node.mark, HEALTH_MARK[health]);
      fill(node.metrics, metricsLine(m));
      node.link.setAttribute(
        "aria-label",
        `${id}: ${HEALTH_LABEL[health]}; ${m ? `${formatRate(m.requestsPerSecond)}, ${formatPercent(m.successRate)} success, p99 ${formatMs(m.latencyMs.p99)}` : "no traffic"}; ${endpoints.length - out} of ${endpoints.length} endpoints serving. Open the service page.`,
      );
    }
    for (const m of metrics?.edges ?? []) {
      const edge = this.edges.get(edgeKey(m));
      if (!edge) continue;
      const health = trafficHealth(m);
      edge.group.setAttribute("class", `edge health-${health}`);
      edge.group.setAttribute("data-health", health);
      edge.group.setAttribute("data-requests", String(m.requests));
      edge.group.querySelector("path")?.setAttribute("marker-end", `url(#arrow-${health})`);
      const line1 = `${formatRate(m.requestsPerSecond)} · ${formatPercent(m.successRate)}`;
      const line2 = `p99 ${formatMs(m.latencyMs.p99)}`;
      fill(edge.line1, line1);
      fill(edge.line2, line2);
      // A plate behind the label keeps the line from running through the text. Its width is
      // estimated from the text (measuring would force a layout on every update).
      const width = Math.max(line1.length, line2.length) * LABEL_CHAR_PX + 8;
      edge.plate.setAttribute("width", String(width));
      edge.plate.setAttribute("x", String(edge.anchor === "start" ? edge.at.x - 4 : edge.anchor === "end" ? edge.at.x - width + 4 : edge.at.x - width / 2));
      fill(edge.title, `${m.labels.source} → ${m.labels.destination}: ${m.requests} requests, ${formatRate(m.requestsPerSecond)}, ${formatPercent(m.successRate)} success, p50 ${formatMs(m.latencyMs.p50)}, p99 ${formatMs(m.latencyMs.p99)}, ${m.retries} retries`);
    }
  }
}

function servicesTable(structure: Structure, metrics: Metrics | null): HTMLElement {
  const rows = structure.services.map((id) => {
    const m = metrics?.services.get(id);
    const health = nodeHealth(structure, metrics, id);
    const endpoints = structure.endpoints.get(id) ?? [];
    const serving = endpoints.filter((e) => !e.excluded).length;
    return [
      h("a", { href: `#/service/${encodeURIComponent(id)}`, "data-key": `service:${id}` }, id),
      h("span", { class: `badge health-${health}` }, `${HEALTH_MARK[health]} ${HEALTH_LABEL[health]}`),
      m ? formatRate(m.requestsPerSecond) : "–",
      formatPercent(m?.successRate),
      m ? formatMs(m.latencyMs.p99) : "–",
      `${serving} / ${endpoints.length}`,
    ];
  });
  return table("Services in the mesh, their health and traffic", ["Service", "Health", "Requests", "Success", "p99", "Endpoints serving"], rows, "No services yet: apply a policy.", { "data-table": "services" });
}

function edgesTable(metrics: Metrics | null): HTMLElement {
  const rows = (metrics?.edges ?? []).map((m) => {
    const health = trafficHealth(m);
    return [
      `${m.labels.source} → ${m.labels.destination}`,
      h("span", { class: `badge health-${health}` }, `${HEALTH_MARK[health]} ${HEALTH_LABEL[health]}`),
      formatRate(m.requestsPerSecond),
      formatPercent(m.successRate),
      formatMs(m.latencyMs.p99),
      String(m.retries),
    ];
  });
  return table("Calls between services (caller → callee)", ["Call", "Health", "Requests", "Success", "p99", "Retries"], rows, "No calls in this window yet.", { "data-table": "edges" });
}
