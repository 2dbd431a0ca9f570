// Prometheus text exposition (format 0.0.4) of the golden metrics. The values are measured over a
// window by the golden-metrics queries, so every family is a gauge labelled with that window, not
// a counter: scrape it like any other gauge (rate() does not apply).
import type { GoldenMetrics, MetricScope } from "../../analytics/golden-metrics.ts";

const PREFIX: Record<MetricScope, string> = { services: "edgemesh_service", edges: "edgemesh_edge", routes: "edgemesh_route" };
const WHAT: Record<MetricScope, string> = { services: "per destination service", edges: "per edge (source -> destination)", routes: "per route of a service" };

/** A label value escaped as the format wants: backslash, double quote and newline. */
function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(pairs: Record<string, string>): string {
  return `{${Object.entries(pairs).map(([k, v]) => `${k}="${labelValue(v)}"`).join(",")}}`;
}

const number = (v: number) => (Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN");

/** One scope's families; `common` (mesh, window) is added to every sample. */
export function exposition(scope: MetricScope, rows: readonly GoldenMetrics[], common: Record<string, string>): string {
  const prefix = PREFIX[scope];
  const families: { name: string; help: string; samples: (row: GoldenMetrics) => [Record<string, string>, number][] }[] = [
    { name: `${prefix}_requests`, help: `Requests in the window, ${WHAT[scope]}.`, samples: (r) => [[{}, r.requests]] },
    { name: `${prefix}_request_rate`, help: `Requests per second over the window, ${WHAT[scope]}.`, samples: (r) => [[{}, r.requestsPerSecond]] },
    { name: `${prefix}_success_rate`, help: `Share of requests answered below 500 over the window, ${WHAT[scope]}.`, samples: (r) => (r.successRate === null ? [] : [[{}, r.successRate]]) },
    {
      name: `${prefix}_latency_ms`,
      help: `Latency quantiles (ms, until response headers) over the window, ${WHAT[scope]}.`,
      samples: (r) => [[{ quantile: "0.5" }, r.latencyMs.p50], [{ quantile: "0.95" }, r.latencyMs.p95], [{ quantile: "0.99" }, r.latencyMs.p99]],
    },
    { name: `${prefix}_retries`, help: `Retries in the window, ${WHAT[scope]}.`, samples: (r) => [[{}, r.retries]] },
    { name: `${prefix}_sheds`, help: `Requests shed by the circuit breaker in the window, ${WHAT[scope]}.`, samples: (r) => [[{}, r.sheds]] },
  ];
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} gauge`);
    for (const row of rows) {
      for (const [extra, value] of f.samples(row)) lines.push(`${f.name}${labels({ ...common, ...row.labels, ...extra })} ${number(value)}`);
    }
  }
  return lines.join("\n") + "\n";
}
