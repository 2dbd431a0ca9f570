// Queries Workers Analytics Engine at the edge through its SQL API: POST the query text to
// <base>/accounts/<account_id>/analytics_engine/sql with a bearer token. The query is checked by
// the local engine first, so the same SQL is accepted or refused the same way in both places.
// The account id and API token are secrets: nothing here logs them, and no error carries them
// (upstream error text is scrubbed of both).
import { parseQuery, SqlError } from "./sql/index.ts";
import type { QueryResult } from "./types.ts";

export const DEFAULT_SQL_API_BASE_URL = "https://api.cloudflare.com/client/v4";
export const DEFAULT_EDGE_QUERY_TIMEOUT_MS = 30_000;
/** How much of an upstream error body is read into the error message. */
const MAX_ERROR_TEXT = 500;

export interface EdgeQueryConfig {
  accountId: string;
  /** An API token with Account | Account Analytics | Read. */
  apiToken: string;
  /** The API's base URL, without a trailing slash (tests point it at a local server). */
  baseUrl?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Variables that configure the edge query path; the account id and token are Worker secrets. */
export interface EdgeQueryEnv {
  EDGEMESH_ANALYTICS_ACCOUNT_ID?: string;
  EDGEMESH_ANALYTICS_API_TOKEN?: string;
  EDGEMESH_ANALYTICS_SQL_API_URL?: string;
}

export type EdgeQueryAnswer =
  | { ok: true; result: QueryResult }
  | {
      ok: false;
      /** 400: the query was refused (locally, with `construct`, or by the API); 502: the API failed or refused the credentials; 504: it did not answer in time. */
      status: 400 | 502 | 504;
      error: string;
      construct?: string;
      upstreamStatus?: number;
    };

/** The edge configuration from the environment, or null when the account id or token is missing. */
export function edgeQueryConfig(env: EdgeQueryEnv): EdgeQueryConfig | null {
  const accountId = env.EDGEMESH_ANALYTICS_ACCOUNT_ID?.trim();
  const apiToken = env.EDGEMESH_ANALYTICS_API_TOKEN?.trim();
  if (!accountId || !apiToken) return null;
  const baseUrl = env.EDGEMESH_ANALYTICS_SQL_API_URL?.trim();
  return { accountId, apiToken, ...(baseUrl ? { baseUrl } : {}) };
}

export function sqlApiUrl(config: Pick<EdgeQueryConfig, "accountId" | "baseUrl">): string {
  const base = (config.baseUrl ?? DEFAULT_SQL_API_BASE_URL).replace(/\/+$/, "");
  return `${base}/accounts/${encodeURIComponent(config.accountId)}/analytics_engine/sql`;
}

export async function queryEdge(sql: string, config: EdgeQueryConfig): Promise<EdgeQueryAnswer> {
  try {
    parseQuery(sql);
  } catch (error) {
    if (error instanceof SqlError) return { ok: false, status: 400, error: error.message, construct: error.construct };
    throw error;
  }
  const scrub = secretScrubber(config);
  const timeoutMs = config.timeoutMs ?? DEFAULT_EDGE_QUERY_TIMEOUT_MS;
  let response: Response;
  try {
    response = await (config.fetch ?? fetch)(sqlApiUrl(config), {
      method: "POST",
      headers: { authorization: `Bearer ${config.apiToken}`, "content-type": "text/plain; charset=utf-8" },
      body: sql,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
      return { ok: false, status: 504, error: `the Analytics Engine SQL API did not answer within ${timeoutMs} ms` };
    }
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { ok: false, status: 502, error: `the Analytics Engine SQL API is unreachable (${scrub(detail).slice(0, MAX_ERROR_TEXT)})` };
  }
  const text = await response.text().catch(() => "");
  if (!response.ok) return upstreamFailure(response.status, scrub(errorText(text)));
  const result = parseAnswer(text);
  if (!result) {
    return { ok: false, status: 502, upstreamStatus: response.status, error: "the Analytics Engine SQL API answered with something other than FORMAT JSON (meta, data, rows)" };
  }
  return { ok: true, result };
}

function upstreamFailure(upstreamStatus: number, detail: string): EdgeQueryAnswer {
  const suffix = detail ? `: ${detail}` : "";
  if (upstreamStatus === 400 || upstreamStatus === 422) {
    return { ok: false, status: 400, upstreamStatus, error: `the Analytics Engine SQL API refused the query (HTTP ${upstreamStatus})${suffix}` };
  }
  if (upstreamStatus === 401 || upstreamStatus === 403) {
    return {
      ok: false,
      status: 502,
      upstreamStatus,
      error: `the Analytics Engine SQL API refused the credentials (HTTP ${upstreamStatus}); check the account id and that the API token has Account Analytics Read${suffix}`,
    };
  }
  return { ok: false, status: 502, upstreamStatus, error: `the Analytics Engine SQL API failed (HTTP ${upstreamStatus})${suffix}` };
}

/** The message of a Cloudflare API error envelope ({ errors: [{ message }] }), or the body as text. */
function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { message?: unknown }[] };
    if (Array.isArray(parsed.errors)) {
      const messages = parsed.errors.map((e) => (typeof e?.message === "string" ? e.message : "")).filter(Boolean);
      if (messages.length > 0) return messages.join("; ").slice(0, MAX_ERROR_TEXT);
    }
  } catch {
    // Not JSON: the SQL API answers query errors as plain text.
  }
  return body.trim().slice(0, MAX_ERROR_TEXT);
}

function parseAnswer(text: string): QueryResult | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof body !== "object" || body === null) return null;
  const { meta, data, rows, rows_before_limit_at_least } = body as Record<string, unknown>;
  const metaOk = Array.isArray(meta) && meta.every((m) => typeof m?.name === "string" && typeof m?.type === "string");
  const dataOk = Array.isArray(data) && data.every((d) => typeof d === "object" && d !== null && !Array.isArray(d));
  if (!metaOk || !dataOk || typeof rows !== "number") return null;
  const result: QueryResult = { meta: meta as QueryResult["meta"], data: data as QueryResult["data"], rows };
  if (typeof rows_before_limit_at_least === "number") result.rows_before_limit_at_least = rows_before_limit_at_least;
  return result;
}

/** Replaces the account id and the token (as written and URL-encoded) wherever they appear. */
function secretScrubber(config: EdgeQueryConfig): (text: string) => string {
  const secrets: [string, string][] = [];
  for (const [secret, label] of [[config.apiToken, "[api-token]"], [config.accountId, "[account-id]"]] as const) {
    if (!secret) continue;
    secrets.push([secret, label]);
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) secrets.push([encoded, label]);
  }
  return (text) => secrets.reduce((out, [secret, label]) => out.split(secret).join(label), text);
}
