// Runs a query plan over rows: filter (WHERE), group and aggregate, filter groups (HAVING),
// project, DISTINCT, sort (ORDER BY), LIMIT/OFFSET, and shape the answer as FORMAT JSON.
import type { AnalyticsRow, QueryResult } from "../types.ts";
import type { AggregatePlan, GroupInput, GroupsPlan, OrderKey, OutputColumn, QueryPlan, RowsPlan } from "./analyze.ts";
import type { AggregateState } from "./aggregates.ts";
import { truthy, type Env } from "./compiled.ts";
import { SqlError } from "./errors.ts";
import { formatValue } from "./format.ts";
import type { SqlType, Value } from "./value-types.ts";

/** One result row before formatting: its output values and its ORDER BY keys. */
interface ResultRow {
  values: Value[];
  sortKeys: Value[];
}

/** Most rows an answer may have before LIMIT (and most groups a query may make): bounds a store's memory. */
export const MAX_RESULT_ROWS = 100_000;

/** The single row a query without FROM reads (ClickHouse's system.one). */
const NO_TABLE_ROW: AnalyticsRow = { dataset: "", timestampMs: 0, sampleInterval: 1, index1: "", blobs: [], doubles: [] };

export function executePlan(plan: QueryPlan, rows: Iterable<AnalyticsRow>, env: Env): QueryResult {
  const input = plan.dataset === null ? [NO_TABLE_ROW] : rows;
  const matching = filterRows(plan, input, env);
  const projected = plan.mode === "rows" ? projectRows(plan, matching, env) : { rows: projectGroups(plan, matching, env), unprojected: 0 };
  return finish(plan, projected.rows, projected.unprojected);
}

function* filterRows(plan: QueryPlan, rows: Iterable<AnalyticsRow>, env: Env): Generator<AnalyticsRow> {
  const { dataset, where } = plan;
  for (const row of rows) {
    if (dataset !== null && row.dataset !== dataset) continue;
    if (where && !truthy(where(row, env))) continue;
    yield row;
  }
}

/**
 * Projects each matching row. With a LIMIT (and no DISTINCT) only OFFSET + LIMIT rows are kept:
 * without ORDER BY the rest are only counted; with it the buffer is sorted and cut whenever it
 * doubles, which keeps exactly the rows a full stable sort would put first.
 */
function projectRows(plan: RowsPlan, rows: Iterable<AnalyticsRow>, env: Env): { rows: ResultRow[]; unprojected: number } {
  let results: ResultRow[] = [];
  const keep = plan.limit !== null && !plan.distinct ? plan.offset + plan.limit : null;
  const cutAt = keep === null ? Infinity : Math.max(2 * keep, 1024);
  let unprojected = 0;
  for (const row of rows) {
    if (keep !== null && plan.orderBy.length === 0 && results.length >= keep) {
      unprojected++;
      continue;
    }
    results.push({ values: plan.outputs.map((o) => o.evaluate(row, env)), sortKeys: plan.orderBy.map((o) => o.evaluate(row, env)) });
    if (results.length >= cutAt) {
      sortRows(results, plan.orderBy);
      unprojected += results.length - keep!;
      results = results.slice(0, keep!);
    }
    if (keep === null && results.length > MAX_RESULT_ROWS) tooLarge("rows");
  }
  return { rows: results, unprojected };
}

function tooLarge(what: "rows" | "groups"): never {
  throw new SqlError("result size", `the answer would have more than ${MAX_RESULT_ROWS} ${what}; add a LIMIT, a narrower WHERE or a coarser GROUP BY`, 0);
}

interface Group {
  keys: Value[];
  states: AggregateState[];
  /** Per DISTINCT aggregate: the argument tuples already added. */
  seen: (Set<string> | null)[];
}

function newGroup(keys: Value[], aggregates: AggregatePlan[]): Group {
  return { keys, states: aggregates.map((a) => a.create()), seen: aggregates.map((a) => (a.distinct ? new Set<string>() : null)) };
}

function projectGroups(plan: GroupsPlan, rows: Iterable<AnalyticsRow>, env: Env): ResultRow[] {
  const groups = new Map<Value, Group>();
  // An aggregate query without GROUP BY answers one row, even over no rows (count() = 0).
  if (plan.keys.length === 0) groups.set("", newGroup([], plan.aggregates));
  const argBuffers = plan.aggregates.map((a) => new Array<Value>(a.args.length));
  const singleKey = plan.keys.length === 1 ? plan.keys[0]!.evaluate : null;
  for (const row of rows) {
    let group: Group | undefined;
    if (plan.keys.length === 0) {
      group = groups.get("")!;
    } else {
      const keys = singleKey ? [singleKey(row, env)] : plan.keys.map((k) => k.evaluate(row, env));
      const mapKey = singleKey ? keys[0]! : JSON.stringify(keys);
      group = groups.get(mapKey);
      if (!group) {
        if (groups.size >= MAX_RESULT_ROWS) tooLarge("groups");
        group = newGroup(keys, plan.aggregates);
        groups.set(mapKey, group);
      }
    }
    for (let i = 0; i < plan.aggregates.length; i++) {
      const aggregate = plan.aggregates[i]!;
      if (aggregate.condition && !truthy(aggregate.condition(row, env))) continue;
      const args = argBuffers[i]!;
      for (let j = 0; j < aggregate.args.length; j++) args[j] = aggregate.args[j]!(row, env);
      const seen = group.seen[i];
      if (seen) {
        const tuple = JSON.stringify(args);
        if (seen.has(tuple)) continue;
        seen.add(tuple);
      }
      group.states[i]!.add(args);
    }
  }
  const results: ResultRow[] = [];
  for (const group of groups.values()) {
    const input: GroupInput = { keys: group.keys, aggregates: group.states.map((s) => s.result()) };
    if (plan.having && !truthy(plan.having(input, env))) continue;
    results.push({ values: plan.outputs.map((o) => o.evaluate(input, env)), sortKeys: plan.orderBy.map((o) => o.evaluate(input, env)) });
  }
  return results;
}

function finish(plan: QueryPlan, projected: ResultRow[], unprojected: number): QueryResult {
  let rows = projected;
  if (plan.distinct) rows = distinctRows(rows);
  if (plan.orderBy.length > 0) sortRows(rows, plan.orderBy);
  const beforeLimit = rows.length + unprojected;
  const end = plan.limit === null ? undefined : plan.offset + plan.limit;
  if (plan.offset > 0 || end !== undefined) rows = rows.slice(plan.offset, end);
  const outputs: OutputColumn<unknown>[] = plan.outputs as OutputColumn<unknown>[];
  const answer: QueryResult = {
    meta: outputs.map((o) => ({ name: o.name, type: o.type })),
    data: rows.map((row) => {
      const record: Record<string, string | number | null> = {};
      outputs.forEach((o, i) => (record[o.name] = formatValue(row.values[i]!, o.type)));
      return record;
    }),
    rows: rows.length,
  };
  if (plan.limit !== null) answer.rows_before_limit_at_least = beforeLimit;
  return answer;
}

function distinctRows(rows: ResultRow[]): ResultRow[] {
  const seen = new Set<string>();
  return rows.filter((row) => {
    const key = JSON.stringify(row.values);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Numbers numerically (NaN last either way, as ClickHouse puts NaN with NULLs), strings by code unit. */
function compareValues(a: Value, b: Value, type: SqlType): number {
  if (type === "String") return a < b ? -1 : a > b ? 1 : 0;
  const x = a as number;
  const y = b as number;
  if (Number.isNaN(x) || Number.isNaN(y)) return 0;
  return x - y;
}

function sortRows(rows: ResultRow[], keys: readonly Pick<OrderKey<unknown>, "type" | "descending">[]): void {
  rows.sort((r1, r2) => {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const a = r1.sortKeys[i]!;
      const b = r2.sortKeys[i]!;
      const aNaN = typeof a === "number" && Number.isNaN(a);
      const bNaN = typeof b === "number" && Number.isNaN(b);
      if (aNaN !== bNaN) return aNaN ? 1 : -1;
      const order = compareValues(a, b, key.type);
      if (order !== 0) return key.descending ? -order : order;
    }
    return 0;
  });
}
