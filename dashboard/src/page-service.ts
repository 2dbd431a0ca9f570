// One service: golden metrics over time, who calls it and whom it calls, its routes with split
// weights and per-route metrics, its endpoints with health and outlier ejections, its circuit
// breaker and retry budget, and the sidecars serving it with the generation each has.
import type { RolloutStatus } from "../../policies/rollout-run.ts";
import { ApiError } from "./api.ts";
import { lineChart } from "./charts.ts";
import type { AppContext, Page } from "./context.ts";
import { STRUCTURE_EVENTS } from "./context.ts";
import { fill, h, table } from "./dom.ts";
import { keepingFocus } from "./focus.ts";
import { compactJson, formatCount, formatDuration, formatMs, formatPercent, formatRate, formatTime } from "./format.ts";
import { HEALTH_LABEL, serviceHealth, trafficHealth } from "./health.ts";
import { HEALTH_MARK } from "./page-topology.ts";
import { Poller } from "./poll.ts";
import { rolloutPanel } from "./rollout-panel.ts";
import { seriesOf, serviceSeriesSql, type SeriesPoint } from "./series.ts";
import type {
  EndpointHealth, GoldenMetrics, HealthAnswer, HealthTransition, MetricsAnswer, PolicyAnswer, QueryAnswer, RegistryAnswer, ServiceSnapshot,
  SidecarDebug, SyncAnswer,
} from "./types.ts";

type Loaded<T> = { ok: true; value: T } | { ok: false; error: string };

async function settle<T>(p: Promise<T>): Promise<Loaded<T>> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, error: err instanceof ApiError ? `${err.message} (HTTP ${err.status})` : (err as Error).message };
  }
}

interface ServiceData {
  atMs: number;
  series: Loaded<SeriesPoint[]>;
  services: Loaded<MetricsAnswer>;
  edges: Loaded<MetricsAnswer>;
  routes: Loaded<MetricsAnswer>;
  policy: Loaded<PolicyAnswer>;
  snapshot: Loaded<ServiceSnapshot>;
  registry: Loaded<RegistryAnswer>;
  health: Loaded<HealthAnswer>;
  history: Loaded<{ transitions: HealthTransition[] }>;
  sync: Loaded<SyncAnswer>;
  sidecar: Loaded<SidecarDebug>;
  /** null when the service declares no rollout. */
  rollout: Loaded<RolloutStatus | null>;
}

async function load(ctx: AppContext, service: string): Promise<ServiceData> {
  const w = ctx.window();
  const q = encodeURIComponent(service);
  const sql = serviceSeriesSql({ dataset: ctx.session.dataset, mesh: ctx.session.mesh, service, windowSeconds: w.seconds });
  const [series, services, edges, routes, policy, snapshot, registry, health, history, sync, sidecar, rollout] = await Promise.all([
    settle(ctx.api.post<QueryAnswer>("/v1/analytics/sql", { body: sql, headers: { "content-type": "text/plain" } }).then((a) => seriesOf(a.data, w.seconds, Date.now()))),
    settle(ctx.api.get<MetricsAnswer>(`/v1/metrics/services?window=${w.text}`)),
    settle(ctx.api.get<MetricsAnswer>(`/v1/metrics/edges?window=${w.text}`)),
    settle(ctx.api.get<MetricsAnswer>(`/v1/metrics/routes?window=${w.text}`)),
    settle(ctx.api.get<PolicyAnswer>("/v1/policy")),
    settle(ctx.api.get<ServiceSnapshot>(`/v1/snapshot/${q}`)),
    settle(ctx.api.get<RegistryAnswer>("/v1/registry")),
    settle(ctx.api.get<HealthAnswer>(`/v1/health?service=${q}`)),
    settle(ctx.api.get<{ transitions: HealthTransition[] }>(`/v1/health/history?service=${q}&limit=20`)),
    settle(ctx.api.get<SyncAnswer>("/v1/sync")),
    settle(ctx.api.get<SidecarDebug>(`/v1/dashboard/sidecars/${q}`)),
    // The list, not /v1/rollouts/<service>: a service without a rollout is no error (no 404 in the console).
    settle(ctx.api.get<{ rollouts: RolloutStatus[] }>("/v1/rollouts").then((a) => a.rollouts.find((r) => r.service === service) ?? null)),
  ]);
  return { atMs: Date.now(), series, services, edges, routes, policy, snapshot, registry, health, history, sync, sidecar, rollout };
}

export function servicePage(ctx: AppContext, service: string): Page {
  const heading = h("h1", { tabindex: -1 }, service);
  const status = h("p", { class: "intro" });
  const sections = {
    golden: h("section", { "aria-labelledby": "golden-title", class: "card" }),
    calls: h("section", { "aria-labelledby": "calls-title", class: "card" }),
    routes: h("section", { "aria-labelledby": "routes-title", class: "card" }),
    endpoints: h("section", { "aria-labelledby": "endpoints-title", class: "card" }),
    resilience: h("section", { "aria-labelledby": "resilience-title", class: "card" }),
    sidecars: h("section", { "aria-labelledby": "sidecars-title", class: "card" }),
    history: h("section", { "aria-labelledby": "history-title", class: "card" }),
  };
  // Declared below, once the poller exists: an action asks for a fresh load at once.
  let refresh = () => {};
  const rollout = rolloutPanel(ctx, service, () => refresh());
  const root = h(
    "section",
    { class: "page page-service", "data-service": service },
    h("p", { class: "crumbs" }, h("a", { href: "#/topology" }, "Topology"), " › ", service),
    heading,
    status,
    rollout.root,
    Object.values(sections),
  );

  let data: ServiceData | null = null;
  const render = () => {
    if (!data) return;
    const d = data;
    const mine = d.services.ok ? d.services.value.services?.find((m) => m.labels.service === service) : undefined;
    const endpoints = d.health.ok ? d.health.value.endpoints : [];
    const health = serviceHealth(mine, endpoints);
    fill(
      status,
      h("span", { class: `badge health-${health}`, "data-health": health }, `${HEALTH_MARK[health]} ${HEALTH_LABEL[health]}`),
      d.snapshot.ok ? ` Policy v${d.snapshot.value.policyVersion}, snapshot generation ${d.snapshot.value.generation}.` : "",
      ` Updated ${formatTime(d.atMs, Date.now())} UTC.`,
    );
    const draw = (region: HTMLElement, content: () => (Node | string | null)[]) => keepingFocus(region, () => fill(region, ...content()));
    draw(sections.golden, () => golden(ctx, d, mine));
    draw(sections.calls, () => calls(d, service));
    draw(sections.routes, () => routes(d, service));
    draw(sections.endpoints, () => endpointSection(d, service));
    draw(sections.resilience, () => resilience(d));
    draw(sections.sidecars, () => sidecars(d, service));
    draw(sections.history, () => healthHistory(d));
    rollout.update(d.rollout.ok ? d.rollout.value : d.rollout.error);
  };

  const poll = new Poller(async () => {
    data = await load(ctx, service);
    render();
  });
  refresh = () => poll.now();
  const offEvent = ctx.onEvent((e) => {
    if (STRUCTURE_EVENTS.has(e.type) || (e.type.startsWith("rollout.") && e.data.service === service)) poll.now();
  });
  const offWindow = ctx.onWindowChange(() => poll.now());
  return {
    root,
    dispose() {
      poll.stop();
      offEvent();
      offWindow();
      rollout.dispose();
    },
  };
}

const failed = (what: string, l: { ok: false; error: string }) => h("p", { class: "error" }, `${what} unavailable: ${l.error}`);

function golden(ctx: AppContext, d: ServiceData, mine: GoldenMetrics | undefined): (Node | string | null)[] {
  const w = ctx.window();
  const out: (Node | string | null)[] = [h("h2", { id: "golden-title" }, `Golden metrics, ${w.label}`)];
  out.push(
    h(
      "dl",
      { class: "stats" },
      stat("Requests", mine ? formatRate(mine.requestsPerSecond) : "–", mine ? `${formatCount(mine.requests)} in the window` : "no traffic"),
      stat("Success", formatPercent(mine?.successRate), mine ? `${formatCount(mine.retries)} retries, ${formatCount(mine.sheds)} shed` : ""),
      stat("p50", mine ? formatMs(mine.latencyMs.p50) : "–", ""),
      stat("p99", mine ? formatMs(mine.latencyMs.p99) : "–", mine ? `p95 ${formatMs(mine.latencyMs.p95)}` : ""),
    ),
  );
  if (!d.series.ok) {
    out.push(failed("Charts", d.series));
    return out;
  }
  const points = d.series.value;
  const last = [...points].reverse().find((p) => p.successRate !== null);
  out.push(
    h(
      "div",
      { class: "charts" },
      lineChart({ title: "Requests per second", lines: [{ name: "req/s", values: points.map((p) => p.requestsPerSecond), className: "series-rate" }], format: formatRate, current: formatRate(points.at(-1)?.requestsPerSecond ?? 0), spanLabel: w.label }),
      lineChart({ title: "Success rate", lines: [{ name: "success", values: points.map((p) => p.successRate), className: "series-success" }], format: (v) => formatPercent(v), max: 1, current: formatPercent(last?.successRate), spanLabel: w.label }),
      lineChart({
        title: "Latency",
        lines: [
          { name: "p50", values: points.map((p) => p.p50Ms), className: "series-p50" },
          { name: "p99", values: points.map((p) => p.p99Ms), className: "series-p99" },
        ],
        format: formatMs,
        current: last ? `p50 ${formatMs(last.p50Ms)} · p99 ${formatMs(last.p99Ms)}` : "–",
        spanLabel: w.label,
      }),
    ),
  );
  return out;
}

function stat(name: string, value: string, note: string): HTMLElement {
  return h("div", { class: "stat" }, h("dt", {}, name), h("dd", {}, h("span", { class: "stat-value" }, value), note ? h("span", { class: "stat-note" }, note) : null));
}

function calls(d: ServiceData, service: string): (Node | string | null)[] {
  const out: (Node | string | null)[] = [h("h2", { id: "calls-title" }, "Callers and callees")];
  if (!d.edges.ok) return [...out, failed("Call metrics", d.edges)];
  const edges = d.edges.value.edges ?? [];
  const row = (m: GoldenMetrics, other: string) => {
    const health = trafficHealth(m);
    return [
      other === "external" || other === service ? other : h("a", { href: `#/service/${encodeURIComponent(other)}`, "data-key": `peer:${other}` }, other),
      h("span", { class: `badge health-${health}` }, `${HEALTH_MARK[health]} ${HEALTH_LABEL[health]}`),
      formatRate(m.requestsPerSecond),
      formatPercent(m.successRate),
      formatMs(m.latencyMs.p99),
    ];
  };
  out.push(
    h(
      "div",
      { class: "columns" },
      table("Calls into this service", ["Caller", "Health", "Requests", "Success", "p99"], edges.filter((m) => m.labels.destination === service).map((m) => row(m, m.labels.source ?? "")), "No callers in this window."),
      table("Calls this service makes", ["Callee", "Health", "Requests", "Success", "p99"], edges.filter((m) => m.labels.source === service).map((m) => row(m, m.labels.destination ?? "")), "No calls out in this window."),
    ),
  );
  return out;
}

/** The compiled split as percentages per subset. */
function splitOf(route: ServiceSnapshot["routes"][number]): { subset: string; percent: number }[] {
  const { subsets, cumulative, total } = route.split;
  return subsets.map((subset, i) => ({ subset, percent: total > 0 ? (((cumulative[i] ?? 0) - (i > 0 ? cumulative[i - 1] ?? 0 : 0)) / total) * 100 : 0 }));
}

function matchText(route: ServiceSnapshot["routes"][number], written: unknown[] | undefined): string {
  if (written && written.length > 0) return written.map((m) => compactJson(m, 90)).join(" or ");
  return route.matches.length === 0 ? "every request" : route.matches.map((m) => compactJson(m, 90)).join(" or ");
}

function routes(d: ServiceData, service: string): (Node | string | null)[] {
  const out: (Node | string | null)[] = [h("h2", { id: "routes-title" }, "Routes")];
  if (!d.snapshot.ok) return [...out, failed("Routes", d.snapshot)];
  const written = d.policy.ok ? d.policy.value.document.services?.[service]?.routes ?? [] : [];
  const metrics = d.routes.ok ? (d.routes.value.routes ?? []).filter((m) => m.labels.service === service) : [];
  const rows = d.snapshot.value.routes.map((route) => {
    const m = metrics.find((x) => x.labels.route === route.name);
    const split = splitOf(route);
    return [
      h("span", { class: "mono" }, route.name),
      h("span", { class: "match" }, matchText(route, written.find((r) => r.name === route.name)?.match)),
      h(
        "div",
        { class: "split", "data-route": route.name },
        split.map((p) =>
          h("div", { class: "split-row" }, h("span", { class: "split-name" }, p.subset === "*" ? "all endpoints" : p.subset), h("meter", { min: 0, max: 100, value: p.percent, "aria-label": `${p.subset} weight` }), h("span", { class: "split-pct", "data-subset": p.subset }, `${Math.round(p.percent * 10) / 10}%`)),
        ),
      ),
      formatMs(route.timeoutMs),
      m ? formatRate(m.requestsPerSecond) : "–",
      formatPercent(m?.successRate),
      m ? formatMs(m.latencyMs.p99) : "–",
    ];
  });
  out.push(table("Routes in match order, with split weights and metrics", ["Route", "Match", "Split", "Timeout", "Requests", "Success", "p99"], rows, "No routes.", { "data-table": "routes" }));
  if (!d.routes.ok) out.push(failed("Route metrics", d.routes));
  return out;
}

function activeText(e: EndpointHealth | undefined): string {
  if (!e?.active) return "not checked";
  return `${e.active.state}${e.active.lastDetail ? ` (${e.active.lastDetail})` : ""}`;
}

function passiveText(e: EndpointHealth | undefined, nowMs: number): string {
  const ejectedUntil = e?.passive?.ejectedUntilMs ?? null;
  if (ejectedUntil !== null && ejectedUntil > nowMs) return `ejected for ${formatDuration(ejectedUntil - nowMs)}: ${e?.passive?.reason ?? ""}`;
  return e?.passive ? "ok" : "not tracked";
}

function endpointSection(d: ServiceData, service: string): (Node | string | null)[] {
  const out: (Node | string | null)[] = [h("h2", { id: "endpoints-title" }, "Endpoints")];
  if (!d.registry.ok) return [...out, failed("Endpoints", d.registry)];
  const nowMs = Date.now();
  const health = d.health.ok ? d.health.value.endpoints : [];
  const outliers = d.sidecar.ok ? d.sidecar.value.outliers.endpoints ?? [] : [];
  const rows = (d.registry.value.services[service] ?? []).map((e) => {
    const eh = health.find((x) => x.endpointId === e.id);
    const o = outliers.find((x) => x.id === e.id);
    const serving = !(eh?.excluded ?? e.excluded);
    return [
      h("span", { class: "mono" }, e.id),
      e.binding ? `binding ${e.binding}` : e.url ?? "",
      Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(", "),
      e.source === "policy" ? "policy" : `registered${e.expiresAtMs ? `, lease ${formatDuration(e.expiresAtMs - nowMs)} left` : ""}`,
      h("span", { class: serving ? "ok" : "bad", "data-endpoint-state": e.id }, serving ? "serving" : "excluded"),
      activeText(eh),
      passiveText(eh, nowMs),
      o ? `${o.phase}${o.ejections > 0 ? `, ejected ${o.ejections}×` : ""}${o.ejectedForMs > 0 ? `, back in ${formatDuration(o.ejectedForMs)}` : ""}` : "–",
    ];
  });
  out.push(table("Endpoints with their health", ["Endpoint", "Target", "Labels", "Source", "State", "Active check", "Passive health", "Outlier (one isolate)"], rows, "No endpoints.", { "data-table": "endpoints" }));
  const events = d.sidecar.ok ? [...(d.sidecar.value.outliers.events ?? [])].reverse().slice(0, 10) : [];
  out.push(
    table(
      "Recent outlier ejections and re-admissions (one sidecar isolate)",
      ["Time", "Endpoint", "Event", "Reason"],
      events.map((e) => [formatTime(e.atMs, nowMs), e.endpoint, `${e.event}${e.ejectionMs ? ` for ${formatDuration(e.ejectionMs)}` : ""}`, e.reason]),
      d.sidecar.ok ? "No ejections in this isolate." : "The sidecar could not be asked.",
    ),
  );
  return out;
}

function resilience(d: ServiceData): (Node | string | null)[] {
  const out: (Node | string | null)[] = [h("h2", { id: "resilience-title" }, "Circuit breaker and retry budget")];
  if (!d.sidecar.ok) return [...out, failed("The sidecar's state", d.sidecar)];
  const sc = d.sidecar.value;
  const cfg = d.snapshot.ok ? d.snapshot.value : undefined;
  out.push(h("p", { class: "note" }, `One sidecar isolate's view (reached through the control Worker's ${sc.binding} binding${sc.status.isolateId ? `, isolate ${sc.status.isolateId.slice(0, 8)}` : ""}); other isolates keep their own.`));
  const breaker = sc.resilience.breaker;
  const budget = sc.resilience.retryBudget;
  out.push(
    h(
      "dl",
      { class: "stats" },
      stat("In flight", breaker ? String(breaker.active) : "–", cfg?.circuitBreaker ? `limit ${cfg.circuitBreaker.maxConcurrent}` : ""),
      stat("Pending", breaker ? String(breaker.pending) : "–", cfg?.circuitBreaker ? `limit ${cfg.circuitBreaker.maxPending}` : ""),
      stat("Shed", breaker ? String(breaker.rejectedPending) : "–", "refused by the breaker"),
      stat(
        "Retry budget",
        budget ? `${budget.retries} / ${budget.requests}` : "–",
        budget && cfg?.retryBudget
          ? `retries / requests in ${formatDuration(cfg.retryBudget.windowMs)}; allows ${cfg.retryBudget.percent}% + ${cfg.retryBudget.minRetriesPerSecond}/s; ${budget.refused} refused`
          : "",
      ),
    ),
  );
  if (sc.resilience.error) out.push(h("p", { class: "error" }, sc.resilience.error));
  return out;
}

function sidecars(d: ServiceData, service: string): (Node | string | null)[] {
  const out: (Node | string | null)[] = [h("h2", { id: "sidecars-title" }, "Sidecars and sync")];
  if (!d.sync.ok) return [...out, failed("Sync status", d.sync)];
  const sync = d.sync.value;
  const mine = sync.sidecars.filter((x) => x.service === service);
  out.push(h("p", { class: "note" }, `The mesh is at generation ${sync.targetGeneration} (policy v${sync.policyVersion}).`));
  out.push(
    table(
      "Sidecar isolates serving this service",
      ["Isolate", "Colo", "Generation", "Policy", "State", "Last check-in"],
      mine.map((x) => [h("span", { class: "mono" }, x.isolateId.slice(0, 8)), x.colo, String(x.generation), `v${x.policyVersion}`, h("span", { class: x.state === "synced" ? "ok" : "bad" }, x.state), `${formatDuration(x.lastSeenAgoMs)} ago`]),
      "No sidecar of this service has checked in recently (no traffic).",
      { "data-table": "sidecars" },
    ),
  );
  return out;
}

function healthHistory(d: ServiceData): (Node | string | null)[] {
  const out: (Node | string | null)[] = [h("h2", { id: "history-title" }, "Health transitions")];
  if (!d.history.ok) return [...out, failed("Health history", d.history)];
  const nowMs = Date.now();
  out.push(
    table(
      "The latest health transitions of this service's endpoints",
      ["Time", "Endpoint", "Source", "Change", "Reason"],
      d.history.value.transitions.map((t) => [formatTime(t.atMs, nowMs), t.endpointId, t.source, `${t.from} → ${t.to}`, t.reason]),
      "No transitions recorded.",
    ),
  );
  return out;
}
