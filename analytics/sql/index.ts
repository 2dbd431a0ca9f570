// The Analytics Engine SQL engine: parse a query once (refusing anything outside the supported
// subset with a SqlError that names it), then run it over rows from any store. A store may read
// only the rows `scanFilter` says can match; the engine applies the whole query either way.
import type { AnalyticsRow, QueryResult } from "../types.ts";
import { analyze, type QueryPlan } from "./analyze.ts";
import type { Env } from "./compiled.ts";
import { executePlan } from "./execute.ts";
import { parseSelect } from "./parser.ts";
import { scanFilter as planScanFilter, type ScanFilter } from "./pushdown.ts";

export { SqlError } from "./errors.ts";
export { MAX_EXPRESSION_DEPTH, MAX_QUERY_LENGTH } from "./parser.ts";
export { MAX_RESULT_ROWS } from "./execute.ts";
export type { ScanFilter } from "./pushdown.ts";

/** A query checked and compiled, ready to run any number of times. */
export interface ParsedQuery {
  readonly sql: string;
  /** The dataset of FROM; null for a query without FROM. */
  readonly dataset: string | null;
  /** The dataset's columns the query reads. */
  readonly columns: readonly string[];
  /** The compiled query; opaque to callers. */
  readonly plan: QueryPlan;
}

export interface RunOptions {
  /** What now() returns, in milliseconds since the epoch (truncated to whole seconds). */
  nowMs: number;
}

/** Rows to query: all of them, or a function that reads those that can match a filter. */
export type RowSource = Iterable<AnalyticsRow> | ((filter: ScanFilter) => Iterable<AnalyticsRow>);

/** Parses and checks a query. Throws SqlError for malformed or unsupported SQL. */
export function parseQuery(sql: string): ParsedQuery {
  const plan = analyze(parseSelect(sql));
  return { sql, dataset: plan.dataset, columns: plan.columns, plan };
}

/** The dataset, columns and time range a run of the query can match, for a store to read only those. */
export function scanFilter(query: ParsedQuery, options: RunOptions): ScanFilter {
  return planScanFilter(query.plan, envOf(options));
}

/** Runs a parsed query. Throws SqlError when evaluation fails (division by zero, an unreadable DateTime). */
export function executeQuery(query: ParsedQuery, source: RowSource, options: RunOptions): QueryResult {
  const env = envOf(options);
  const rows = typeof source === "function" ? source(planScanFilter(query.plan, env)) : source;
  return executePlan(query.plan, rows, env);
}

/** parseQuery and executeQuery in one. */
export function runQuery(sql: string, source: RowSource, options: RunOptions): QueryResult {
  return executeQuery(parseQuery(sql), source, options);
}

function envOf(options: RunOptions): Env {
  return { nowSeconds: Math.floor(options.nowMs / 1000) };
}
