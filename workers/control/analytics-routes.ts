// The analytics part of the admin API, a Hono sub-app mounted by the control Worker:
//   POST /v1/analytics/sql             the SQL text as body; answers like Analytics Engine's SQL API
//   GET  /v1/metrics/services|edges|routes?window=1m   golden metrics as JSON
//   GET  /metrics?window=1m            the same as Prometheus text exposition
// Queries run on the local telemetry store, or at the edge through Analytics Engine's SQL API when
// an account id and API token are configured; the same query text in both places.
import { Hono, type Context } from "hono";
import { edgeQueryConfig, queryEdge, type EdgeQueryEnv } from "../../analytics/edge-client.ts";
import { REQUESTS_DATASET } from "../../analytics/request-layout.ts";
import type { TelemetryStoreRpc } from "../../analytics/store-rpc.ts";
import type { QueryResult } from "../../analytics/types.ts";
import { requireAdminToken } from "./admin-auth.ts";
import { goldenMetricsOf, goldenMetricsSql, METRIC_SCOPES, parseWindow, type MetricScope, type MetricsAnswer, type MetricWindow } from "../../analytics/golden-metrics.ts";
import { readBody } from "./common.ts";
import { exposition } from "./prometheus.ts";

/** With EDGEMESH_ANALYTICS_ACCOUNT_ID and EDGEMESH_ANALYTICS_API_TOKEN (secrets) queries go to the edge. */
export interface AnalyticsEnv extends EdgeQueryEnv {
  EDGEMESH_ADMIN_TOKEN: string;
  MESH_NAME: string;
  /** The local telemetry store, one object per dataset (the sidecars' TELEMETRY_STORE is the same). */
  TELEMETRY_STORE?: DurableObjectNamespace;
  /** The dataset the sidecars write to (default edgemesh_requests). */
  TELEMETRY_DATASET?: string;
}

type Env = { Bindings: AnalyticsEnv };
type Ctx = Context<Env>;

export type QuerySource = "local" | "edge";
type Answer = { ok: true; source: QuerySource; result: QueryResult } | { ok: false; status: 400 | 502 | 503 | 504; body: Record<string, unknown> };

/** Longest SQL text accepted. */
export const MAX_SQL_BYTES = 64 * 1024;
const MESH_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const edgeConfigured = (env: AnalyticsEnv) => edgeQueryConfig(env) !== null;

/** ?source=local|edge; without it the edge when configured, else the local store. */
function sourceOf(c: Ctx): QuerySource | { error: string } {
  const raw = c.req.query("source");
  if (raw === undefined || raw === "") return edgeConfigured(c.env) ? "edge" : "local";
  if (raw !== "local" && raw !== "edge") return { error: `?source must be "local" or "edge", got "${raw}"` };
  return raw;
}

async function runQuery(env: AnalyticsEnv, sql: string, source: QuerySource): Promise<Answer> {
  if (source === "edge") {
    const config = edgeQueryConfig(env);
    if (!config) {
      return { ok: false, status: 503, body: { error: "edge queries need the secrets EDGEMESH_ANALYTICS_ACCOUNT_ID and EDGEMESH_ANALYTICS_API_TOKEN on the control Worker (wrangler secret put …)" } };
    }
    const answer = await queryEdge(sql, config);
    if (answer.ok) return { ok: true, source: "edge", result: answer.result };
    const { ok: _ok, status, ...body } = answer;
    return { ok: false, status, body };
  }
  const ns = env.TELEMETRY_STORE;
  if (!ns) return { ok: false, status: 503, body: { error: "this control Worker has no TELEMETRY_STORE binding, so there is nothing to query locally" } };
  const store = ns.get(ns.idFromName(env.TELEMETRY_DATASET || REQUESTS_DATASET)) as unknown as Pick<TelemetryStoreRpc, "query">;
  const answer = await store.query(sql);
  if (answer.ok) return { ok: true, source: "local", result: answer.result };
  return { ok: false, status: 400, body: { error: answer.error, construct: answer.construct } };
}

function refuse(c: Ctx, answer: Extract<Answer, { ok: false }>): Response {
  return c.json(answer.body, answer.status);
}

async function readSql(c: Ctx): Promise<string | Response> {
  // Refused by Content-Length, or as soon as a streamed body passes the limit: never read whole first.
  const body = await readBody(c, MAX_SQL_BYTES);
  if (!body.ok) return body.response;
  const sql = body.text;
  if (sql.trim() === "") return c.json({ error: "send the SQL text as the request body, e.g. SELECT count() FROM edgemesh_requests" }, 400);
  return sql;
}

function meshOf(c: Ctx): string | Response {
  const mesh = c.req.query("mesh") ?? c.env.MESH_NAME;
  return MESH_NAME.test(mesh) ? mesh : c.json({ error: `?mesh must be a mesh name (lowercase letters, digits and '-'), got "${mesh}"` }, 400);
}

interface MetricsQuery {
  window: MetricWindow;
  source: QuerySource;
  mesh: string;
}

/** What every metrics route reads from its query string (?window, ?source, ?mesh), or the 400 for a bad one. */
function metricsQuery(c: Ctx): MetricsQuery | Response {
  const window = parseWindow(c.req.query("window"));
  if ("error" in window) return c.json(window, 400);
  const source = sourceOf(c);
  if (typeof source !== "string") return c.json(source, 400);
  const mesh = meshOf(c);
  if (typeof mesh !== "string") return mesh;
  return { window, source, mesh };
}

/** Runs one scope's golden-metrics query. */
async function golden(c: Ctx, scope: MetricScope, { window, source, mesh }: MetricsQuery) {
  const dataset = c.env.TELEMETRY_DATASET || REQUESTS_DATASET;
  const answer = await runQuery(c.env, goldenMetricsSql(scope, mesh, window, dataset), source);
  return answer.ok ? { ok: true as const, rows: goldenMetricsOf(scope, answer.result, window), source: answer.source } : answer;
}

export const analyticsRoutes = new Hono<Env>();

analyticsRoutes.use("/metrics", requireAdminToken);

analyticsRoutes.post("/v1/analytics/sql", async (c) => {
  const source = sourceOf(c);
  if (typeof source !== "string") return c.json(source, 400);
  const sql = await readSql(c);
  if (typeof sql !== "string") return sql;
  const answer = await runQuery(c.env, sql, source);
  if (!answer.ok) return refuse(c, answer);
  return c.json(answer.result, 200, { "x-edgemesh-analytics-source": answer.source });
});

analyticsRoutes.get("/v1/metrics/:scope", async (c) => {
  const scope = c.req.param("scope") as MetricScope;
  if (!METRIC_SCOPES.includes(scope)) return c.json({ error: `unknown metrics scope "${scope}"; known: ${METRIC_SCOPES.join(", ")}` }, 404);
  const query = metricsQuery(c);
  if (query instanceof Response) return query;
  const answer = await golden(c, scope, query);
  if (!answer.ok) return refuse(c, answer);
  const { window, mesh } = query;
  const body: MetricsAnswer = { mesh, scope, window: window.text, windowSeconds: window.seconds, source: answer.source, [scope]: answer.rows };
  return c.json(body);
});

analyticsRoutes.get("/metrics", async (c) => {
  const query = metricsQuery(c);
  if (query instanceof Response) return query;
  const answers = await Promise.all(METRIC_SCOPES.map((scope) => golden(c, scope, query)));
  const parts: string[] = [];
  for (let i = 0; i < METRIC_SCOPES.length; i++) {
    const answer = answers[i]!;
    if (!answer.ok) return refuse(c, answer);
    parts.push(exposition(METRIC_SCOPES[i]!, answer.rows, { mesh: query.mesh, window: query.window.text }));
  }
  return c.text(parts.join(""), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
});
