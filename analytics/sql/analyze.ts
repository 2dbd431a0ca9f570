// Turns a parsed SELECT into a plan the executor runs: aliases resolved (ClickHouse lets an alias
// from the SELECT list be used anywhere in the query), every column and function checked and typed,
// expressions compiled to closures, aggregates collected, and the WHERE clause's bounds on
// `timestamp` kept so a store can read only the rows that can match.
import type { AnalyticsRow } from "../types.ts";
import { aggregateFunction, type AggregateState } from "./aggregates.ts";
import type { CallExpr, Expr, SelectItem, SelectStatement } from "./ast.ts";
import { column, COLUMN_NAMES, COLUMNS_DESCRIPTION } from "./columns.ts";
import { callError, type Compiled, type Env, type Evaluate } from "./compiled.ts";
import { SqlError } from "./errors.ts";
import { exprKey, exprText } from "./expr-text.ts";
import { FUNCTION_NAMES, scalarFunction } from "./functions.ts";
import { integerLiteralType, intervalType, isInterval, isNumeric, type SqlType, type Value } from "./value-types.ts";

/** A finished group: its GROUP BY key values and its aggregates' results. */
export interface GroupInput {
  keys: readonly Value[];
  aggregates: readonly Value[];
}

export interface OutputColumn<I> {
  name: string;
  type: SqlType;
  evaluate: Evaluate<I>;
}

export interface OrderKey<I> {
  type: SqlType;
  evaluate: Evaluate<I>;
  descending: boolean;
}

export interface AggregatePlan {
  args: Evaluate<AnalyticsRow>[];
  /** The -If combinator's condition. */
  condition: Evaluate<AnalyticsRow> | null;
  distinct: boolean;
  create: () => AggregateState;
}

export type TimeComparison = "greater" | "greaterOrEquals" | "less" | "lessOrEquals" | "equals";

/** `timestamp <op> value`, one conjunct of WHERE, with a value that reads no column. */
export interface TimeBound {
  op: TimeComparison;
  value: Compiled<AnalyticsRow>;
}

interface PlanCommon {
  dataset: string | null;
  /** The dataset's columns the query reads. */
  columns: string[];
  where: Evaluate<AnalyticsRow> | null;
  timeBounds: TimeBound[];
  distinct: boolean;
  limit: number | null;
  offset: number;
}

export interface RowsPlan extends PlanCommon {
  mode: "rows";
  outputs: OutputColumn<AnalyticsRow>[];
  orderBy: OrderKey<AnalyticsRow>[];
}

export interface GroupsPlan extends PlanCommon {
  mode: "groups";
  keys: Compiled<AnalyticsRow>[];
  aggregates: AggregatePlan[];
  outputs: OutputColumn<GroupInput>[];
  having: Evaluate<GroupInput> | null;
  orderBy: OrderKey<GroupInput>[];
}

export type QueryPlan = RowsPlan | GroupsPlan;

/** Folding constants needs no clock: impure functions (now()) are never folded. */
const FOLDING_ENV: Env = { nowSeconds: 0 };
const FLIPPED: Record<TimeComparison, TimeComparison> = { greater: "less", greaterOrEquals: "lessOrEquals", less: "greater", lessOrEquals: "greaterOrEquals", equals: "equals" };

export function analyze(statement: SelectStatement): QueryPlan {
  return new Analyzer(statement).plan();
}

function isAggregateCall(expr: Expr): boolean {
  return expr.kind === "call" && !expr.operator && (aggregateFunction(expr.name) !== undefined || LEGACY_AGGREGATES.has(expr.name.toLowerCase()));
}

function containsAggregate(expr: Expr): boolean {
  if (isAggregateCall(expr)) return true;
  return expr.kind === "call" && expr.args.some(containsAggregate);
}

/** Older spellings Analytics Engine documents: quantileWeighted(q, x, w) and medianExactWeighted(x, w). */
const LEGACY_AGGREGATES = new Set(["quantileweighted", "medianexactweighted"]);

class Analyzer {
  private readonly aliases = new Map<string, Expr>();
  private readonly columnsRead = new Set<string>();
  private readonly items: SelectItem[];
  // Group phase state.
  private readonly keyIndex = new Map<string, number>();
  private keyTypes: SqlType[] = [];
  private readonly aggregateIndex = new Map<string, { index: number; type: SqlType }>();
  private readonly aggregates: AggregatePlan[] = [];

  constructor(private readonly statement: SelectStatement) {
    this.items = this.expandStar(statement.items);
    for (const item of this.items) {
      if (item.alias === null) continue;
      const earlier = this.aliases.get(item.alias);
      if (earlier && exprKey(earlier) !== exprKey(item.expr)) {
        throw new SqlError(`alias ${item.alias}`, `alias ${item.alias} is given to two different expressions`, item.position);
      }
      this.aliases.set(item.alias, item.expr);
    }
  }

  plan(): QueryPlan {
    const { statement } = this;
    // An item's own alias inside its expression means the column (SELECT double1 * 2 AS double1).
    const selected = this.items.map((item) => this.expand(item.expr, new Set(item.alias === null ? [] : [item.alias])));
    const where = statement.where ? this.expand(statement.where) : null;
    const groupBy = statement.groupBy.map((e) => this.positional(e, selected, "GROUP BY"));
    const having = statement.having ? this.expand(statement.having) : null;
    const orderBy = statement.orderBy.map((o) => ({ expr: this.positional(o.expr, selected, "ORDER BY"), descending: o.descending }));

    if (where && containsAggregate(where)) this.aggregateIn(where, "WHERE");
    for (const key of groupBy) if (containsAggregate(key)) this.aggregateIn(key, "GROUP BY");
    const grouped = groupBy.length > 0 || [...selected, ...(having ? [having] : []), ...orderBy.map((o) => o.expr)].some(containsAggregate);
    if (having && !grouped) throw new SqlError("HAVING", "HAVING filters groups: it needs GROUP BY or an aggregate function; use WHERE to filter rows", having.position);

    const whereCompiled = where ? this.condition(this.compileRow(where, "WHERE"), "WHERE", where) : null;
    const common: PlanCommon = {
      dataset: statement.dataset,
      columns: [],
      where: whereCompiled,
      timeBounds: where ? this.timeBounds(where) : [],
      distinct: statement.distinct,
      limit: statement.limit,
      offset: statement.offset,
    };
    const names = this.outputNames();
    let plan: QueryPlan;
    if (!grouped) {
      plan = {
        ...common,
        mode: "rows",
        outputs: selected.map((expr, i) => this.output(names[i]!, this.compileRow(expr, "SELECT"))),
        orderBy: orderBy.map((o) => ({ ...this.orderKey(this.compileRow(o.expr, "ORDER BY"), o.expr), descending: o.descending })),
      };
    } else {
      const keys = groupBy.map((key) => {
        const compiled = this.compileRow(key, "GROUP BY");
        if (isInterval(compiled.type)) throw new SqlError(exprText(key), `cannot GROUP BY an INTERVAL (${exprText(key)})`, key.position);
        return compiled;
      });
      groupBy.forEach((key, i) => {
        if (!this.keyIndex.has(exprKey(key))) this.keyIndex.set(exprKey(key), i);
      });
      this.keyTypes = keys.map((k) => k.type);
      plan = {
        ...common,
        mode: "groups",
        keys,
        outputs: selected.map((expr, i) => this.output(names[i]!, this.compileGroup(expr))),
        having: having ? this.condition(this.compileGroup(having), "HAVING", having) : null,
        orderBy: orderBy.map((o) => ({ ...this.orderKey(this.compileGroup(o.expr), o.expr), descending: o.descending })),
        aggregates: this.aggregates,
      };
    }
    plan.columns = COLUMN_NAMES.filter((name) => this.columnsRead.has(name));
    return plan;
  }

  // ---- names, aliases and positions ----

  private expandStar(items: SelectItem[]): SelectItem[] {
    const out: SelectItem[] = [];
    for (const item of items) {
      if (item.expr.kind !== "star") {
        out.push(item);
        continue;
      }
      if (this.statement.dataset === null) throw new SqlError("SELECT *", "SELECT * needs FROM <dataset>", item.position);
      for (const name of COLUMN_NAMES) out.push({ expr: { kind: "column", name, position: item.position }, alias: null, position: item.position });
    }
    return out;
  }

  private outputNames(): string[] {
    const names = this.items.map((item) => item.alias ?? exprText(item.expr));
    const seen = new Set<string>();
    names.forEach((name, i) => {
      if (seen.has(name)) throw new SqlError(`column name ${name}`, `two result columns are named ${name}; give one an alias (AS …)`, this.items[i]!.position);
      seen.add(name);
    });
    return names;
  }

  /** Replaces references to SELECT aliases by the aliased expressions. */
  private expand(expr: Expr, expanding: ReadonlySet<string> = new Set()): Expr {
    switch (expr.kind) {
      case "column": {
        const aliased = this.aliases.get(expr.name);
        if (aliased && !expanding.has(expr.name)) return this.expand(aliased, new Set([...expanding, expr.name]));
        if (expanding.has(expr.name) && !column(expr.name)) {
          throw new SqlError(`alias ${expr.name}`, `alias ${expr.name} is defined in terms of itself`, expr.position);
        }
        return expr;
      }
      case "call":
        return { ...expr, args: expr.args.map((a) => this.expand(a, expanding)), params: expr.params?.map((p) => this.expand(p, expanding)) ?? null };
      default:
        return expr;
    }
  }

  /** GROUP BY 1 / ORDER BY 2: a whole-number literal refers to a SELECT item by position. */
  private positional(expr: Expr, selected: Expr[], clause: string): Expr {
    if (expr.kind === "literal" && expr.literalType === "integer") {
      const position = expr.value as number;
      const item = selected[position - 1];
      if (!item) throw new SqlError(`${clause} ${position}`, `${clause} ${position}: the SELECT list has ${selected.length} item(s)`, expr.position);
      return item;
    }
    return this.expand(expr);
  }

  private aggregateIn(expr: Expr, clause: string): never {
    const found = findAggregate(expr)!;
    throw new SqlError(`aggregate function ${found.name} in ${clause}`, `aggregate function ${found.name}() cannot be used in ${clause}${clause === "WHERE" ? "; filter groups with HAVING" : ""}`, found.position);
  }

  // ---- compiling ----

  private literal<I>(expr: Expr): Compiled<I> | null {
    if (expr.kind === "literal") {
      const value = typeof expr.value === "boolean" ? (expr.value ? 1 : 0) : expr.value;
      const type: SqlType = expr.literalType === "string" ? "String" : expr.literalType === "float" ? "Float64" : integerLiteralType(value as number);
      return { type, evaluate: () => value, constant: true, known: value };
    }
    if (expr.kind === "interval") {
      const value = { amount: expr.amount, unit: expr.unit };
      return { type: intervalType(expr.unit), evaluate: () => value, constant: true, known: value };
    }
    return null;
  }

  /** Compiles an expression evaluated per stored row: WHERE, GROUP BY, aggregate arguments, ungrouped SELECT. */
  private compileRow(expr: Expr, clause: string): Compiled<AnalyticsRow> {
    const literal = this.literal<AnalyticsRow>(expr);
    if (literal) return literal;
    switch (expr.kind) {
      case "column":
        return this.column(expr.name, expr.position);
      case "star":
        throw new SqlError("*", "* is allowed only as SELECT * or count(*)", expr.position);
      case "call":
        if (isAggregateCall(expr)) {
          const where = clause === "aggregate" ? "inside another aggregate function" : `in ${clause}`;
          throw new SqlError(`aggregate function ${expr.name} ${where}`, `aggregate function ${expr.name}() cannot be used ${where}`, expr.position);
        }
        return this.scalar(expr, expr.args.map((a) => this.compileRow(a, clause)));
      default:
        throw new SqlError(exprText(expr), `cannot evaluate ${exprText(expr)}`, expr.position);
    }
  }

  /** Compiles an expression evaluated per group: SELECT, HAVING and ORDER BY of a grouped query. */
  private compileGroup(expr: Expr): Compiled<GroupInput> {
    const keyPosition = this.keyIndex.get(exprKey(expr));
    if (keyPosition !== undefined && expr.kind !== "literal") {
      return { type: this.keyTypes[keyPosition]!, evaluate: (group) => group.keys[keyPosition]!, constant: false };
    }
    const literal = this.literal<GroupInput>(expr);
    if (literal) return literal;
    switch (expr.kind) {
      case "column":
        if (!column(expr.name)) this.column(expr.name, expr.position);
        throw new SqlError(
          `column ${expr.name}`,
          `column ${expr.name} is neither in GROUP BY nor inside an aggregate function; add it to GROUP BY or wrap it in an aggregate such as min(${expr.name})`,
          expr.position,
        );
      case "star":
        throw new SqlError("*", "* is allowed only as SELECT * or count(*)", expr.position);
      case "call":
        if (isAggregateCall(expr)) return this.aggregate(expr);
        return this.scalar(expr, expr.args.map((a) => this.compileGroup(a)));
      default:
        throw new SqlError(exprText(expr), `cannot evaluate ${exprText(expr)}`, expr.position);
    }
  }

  private column(name: string, position: number): Compiled<AnalyticsRow> {
    const found = column(name);
    if (!found || this.statement.dataset === null) {
      const differentCase = COLUMN_NAMES.find((c) => c.toLowerCase() === name.toLowerCase());
      const hint = this.statement.dataset === null ? "the query has no FROM, so there are no columns" : differentCase ? `column names are case-sensitive: did you mean ${differentCase}?` : `the columns are ${COLUMNS_DESCRIPTION}`;
      throw new SqlError(`column ${name}`, `unknown column ${name}; ${hint}`, position);
    }
    this.columnsRead.add(name);
    return { type: found.type, evaluate: found.read, constant: false };
  }

  private scalar<I>(call: CallExpr, args: Compiled<I>[]): Compiled<I> {
    const fn = scalarFunction(call.name);
    if (!fn) {
      throw new SqlError(
        `function ${call.name}`,
        `unknown function ${call.name}; supported functions: ${FUNCTION_NAMES.join(", ")}; aggregates: count, sum, avg, min, max, quantileExactWeighted and their -If forms (countIf, sumIf, …)`,
        call.position,
      );
    }
    if (call.params) throw callError(call, "takes no parameters: write it as name(args), not name(params)(args)");
    if (call.distinct) throw callError(call, "DISTINCT is only allowed inside aggregate functions");
    if (args.length < fn.minArgs || args.length > fn.maxArgs) throw callError(call, `takes ${arity(fn.minArgs, fn.maxArgs)}, not ${args.length}`);
    const built = fn.compile(args, call);
    const constant = args.every((a) => a.constant);
    if (fn.pure !== false && args.every((a) => a.known !== undefined)) {
      const known = built.evaluate(undefined as I, FOLDING_ENV);
      return { type: built.type, evaluate: () => known, constant: true, known };
    }
    return { type: built.type, evaluate: built.evaluate, constant };
  }

  private aggregate(original: CallExpr): Compiled<GroupInput> {
    const call = normalizeLegacyAggregate(original);
    const text = exprKey(call);
    let entry = this.aggregateIndex.get(text);
    if (!entry) {
      const resolved = aggregateFunction(call.name)!;
      const starArgs = call.args.filter((a) => a.kind === "star");
      if (starArgs.length > 0 && !(call.name.toLowerCase() === "count" && call.args.length === 1)) {
        throw new SqlError("*", `* is allowed only as SELECT * or count(*), not in ${call.name}()`, starArgs[0]!.position);
      }
      const argExprs = call.args.filter((a) => a.kind !== "star");
      const conditionExpr = resolved.conditional ? argExprs.pop() : undefined;
      if (resolved.conditional && !conditionExpr) throw callError(call, "needs a condition as its last argument");
      const { fn } = resolved;
      if (argExprs.length < fn.minArgs || argExprs.length > fn.maxArgs) {
        throw callError(call, `takes ${arity(fn.minArgs + (resolved.conditional ? 1 : 0), fn.maxArgs + (resolved.conditional ? 1 : 0))}, not ${call.args.length}`);
      }
      if (call.distinct && argExprs.length === 0) throw callError(call, "DISTINCT needs an argument");
      const params = (call.params ?? []).map((p) => {
        const compiled = this.compileRow(p, "aggregate");
        if (typeof compiled.known !== "number") throw callError(call, "parameters must be number constants, e.g. quantileExactWeighted(0.95)(double1, _sample_interval)");
        return compiled.known;
      });
      if (params.length < fn.minParams || params.length > fn.maxParams) {
        throw callError(call, fn.maxParams === 0 ? "takes no parameters" : `takes ${arity(fn.minParams, fn.maxParams).replace("argument", "parameter")}`);
      }
      const args = argExprs.map((a) => this.compileRow(a, "aggregate"));
      const condition = conditionExpr ? this.condition(this.compileRow(conditionExpr, "aggregate"), `the condition of ${call.name}`, conditionExpr) : null;
      const prepared = fn.prepare(args as Compiled<unknown>[], params, call);
      // count(x) counts rows where x is not NULL: every row, as no column holds NULL.
      const countsRows = call.name.toLowerCase().startsWith("count") && !call.distinct;
      this.aggregates.push({ args: countsRows ? [] : args.map((a) => a.evaluate), condition, distinct: call.distinct, create: prepared.create });
      entry = { index: this.aggregates.length - 1, type: prepared.type };
      this.aggregateIndex.set(text, entry);
    }
    const { index } = entry;
    return { type: entry.type, evaluate: (group) => group.aggregates[index]!, constant: false };
  }

  private condition<I>(compiled: Compiled<I>, clause: string, expr: Expr): Evaluate<I> {
    if (!isNumeric(compiled.type)) throw new SqlError(clause, `${clause} must be a condition (a comparison or a number), not ${compiled.type}`, expr.position);
    return compiled.evaluate;
  }

  private output<I>(name: string, compiled: Compiled<I>): OutputColumn<I> {
    return { name, type: compiled.type, evaluate: compiled.evaluate };
  }

  private orderKey<I>(compiled: Compiled<I>, expr: Expr): { type: SqlType; evaluate: Evaluate<I> } {
    if (isInterval(compiled.type)) throw new SqlError(exprText(expr), `cannot ORDER BY an INTERVAL (${exprText(expr)})`, expr.position);
    return { type: compiled.type, evaluate: compiled.evaluate };
  }

  /** Conjuncts of WHERE that bound `timestamp` by a value that reads no column. */
  private timeBounds(where: Expr): TimeBound[] {
    const bounds: TimeBound[] = [];
    for (const conjunct of conjuncts(where)) {
      if (conjunct.kind !== "call" || !Object.hasOwn(FLIPPED, conjunct.name) || conjunct.params || conjunct.args.length !== 2) continue;
      const op = conjunct.name as TimeComparison;
      const [left, right] = conjunct.args as [Expr, Expr];
      const isTimestamp = (e: Expr) => e.kind === "column" && e.name === "timestamp";
      const [valueExpr, boundOp] = isTimestamp(left) ? [right, op] : isTimestamp(right) ? [left, FLIPPED[op]] : [null, op];
      if (!valueExpr || containsAggregate(valueExpr)) continue;
      const value = this.compileRow(valueExpr, "WHERE");
      if (value.constant && (value.type === "DateTime" || value.type === "String" || isNumeric(value.type))) bounds.push({ op: boundOp, value });
    }
    return bounds;
  }
}

function conjuncts(expr: Expr): Expr[] {
  if (expr.kind === "call" && expr.name.toLowerCase() === "and" && !expr.params) return expr.args.flatMap(conjuncts);
  return [expr];
}

function findAggregate(expr: Expr): CallExpr | null {
  if (expr.kind !== "call") return null;
  if (isAggregateCall(expr)) return expr;
  for (const arg of expr.args) {
    const found = findAggregate(arg);
    if (found) return found;
  }
  return null;
}

function normalizeLegacyAggregate(call: CallExpr): CallExpr {
  const lower = call.name.toLowerCase();
  if (lower === "quantileweighted") {
    if (call.params || call.args.length !== 3) throw callError(call, "is written quantileWeighted(level, value, weight)");
    return { ...call, name: "quantileExactWeighted", params: [call.args[0]!], args: call.args.slice(1) };
  }
  if (lower === "medianexactweighted") {
    return { ...call, name: "quantileExactWeighted", params: [{ kind: "literal", value: 0.5, literalType: "float", position: call.position }] };
  }
  return call;
}

function arity(min: number, max: number): string {
  const plural = (n: number) => (n === 1 ? "argument" : "arguments");
  if (min === max) return `${min} ${plural(min)}`;
  if (max === Infinity) return `at least ${min} ${plural(min)}`;
  return `${min} to ${max} arguments`;
}
