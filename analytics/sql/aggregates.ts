// Aggregate functions: count, sum, avg, min, max and quantileExactWeighted, plus the -If
// combinator (countIf, sumIf, avgIf, …) and DISTINCT. None of them weights by _sample_interval on
// its own, as in Analytics Engine: count() counts stored rows; sum(_sample_interval) counts the
// events they stand for.
import type { CallExpr } from "./ast.ts";
import { callError, type Compiled } from "./compiled.ts";
import { isInterval, isNumeric, sumType, type SqlType, type Value } from "./value-types.ts";

export interface AggregateState {
  add(args: readonly Value[]): void;
  result(): Value;
}

export interface AggregateFunction {
  minArgs: number;
  maxArgs: number;
  minParams: number;
  maxParams: number;
  /** Checks the argument types and returns the result type and a factory of per-group states. */
  prepare(args: Compiled<unknown>[], params: number[], call: CallExpr): { type: SqlType; create: () => AggregateState };
}

const less = (a: Value, b: Value) => (a as number | string) < (b as number | string);

function extreme(pickSmaller: boolean): AggregateFunction {
  return {
    minArgs: 1,
    maxArgs: 1,
    minParams: 0,
    maxParams: 0,
    prepare(args, _params, call) {
      const type = args[0]!.type;
      if (isInterval(type)) throw callError(call, "cannot aggregate an INTERVAL");
      const empty: Value = type === "String" ? "" : 0;
      return {
        type,
        create: () => {
          let best: Value | undefined;
          return {
            add: ([x]) => {
              if (best === undefined || (pickSmaller ? less(x!, best) : less(best, x!))) best = x!;
            },
            result: () => best ?? empty,
          };
        },
      };
    },
  };
}

/**
 * ClickHouse's quantileExactWeighted: equal values are merged with their weights summed (weights
 * are whole numbers; NaN values are skipped), values are sorted, and the answer is the first value
 * at which the running weight reaches ceil(level × total weight). With no values it is NaN for
 * Float64 (null in the answer) and 0 otherwise.
 */
export function weightedQuantile(weights: Map<number, number>, level: number): number | null {
  if (weights.size === 0) return null;
  const values = [...weights.keys()].sort((a, b) => a - b);
  let total = 0;
  for (const w of weights.values()) total += w;
  const threshold = Math.ceil(total * level);
  let accumulated = 0;
  for (const value of values) {
    accumulated += weights.get(value)!;
    if (accumulated >= threshold) return value;
  }
  return values[values.length - 1]!;
}

const quantileExactWeighted: AggregateFunction = {
  minArgs: 2,
  maxArgs: 2,
  minParams: 0,
  maxParams: 1,
  prepare(args, params, call) {
    const [value, weight] = args as [Compiled<unknown>, Compiled<unknown>];
    if (!isNumeric(value.type) && value.type !== "DateTime") throw callError(call, `the value must be a number or DateTime, not ${value.type}`);
    if (!isNumeric(weight.type)) throw callError(call, `the weight must be a number (usually _sample_interval), not ${weight.type}`);
    const level = params[0] ?? 0.5;
    if (!(level >= 0 && level <= 1)) throw callError(call, `the level must be between 0 and 1, not ${level}`);
    const empty = value.type === "Float64" ? NaN : 0;
    return {
      type: value.type,
      create: () => {
        const weights = new Map<number, number>();
        return {
          add: ([x, w]) => {
            if (Number.isNaN(x)) return;
            // ClickHouse reads weights as unsigned whole numbers.
            const whole = Math.max(0, Math.trunc((w as number) || 0));
            weights.set(x as number, (weights.get(x as number) ?? 0) + whole);
          },
          result: () => weightedQuantile(weights, level) ?? empty,
        };
      },
    };
  },
};

export const AGGREGATE_FUNCTIONS: Record<string, AggregateFunction> = {
  count: {
    minArgs: 0,
    maxArgs: 1,
    minParams: 0,
    maxParams: 0,
    prepare: () => ({
      type: "UInt64",
      create: () => {
        let n = 0;
        return { add: () => void n++, result: () => n };
      },
    }),
  },
  sum: {
    minArgs: 1,
    maxArgs: 1,
    minParams: 0,
    maxParams: 0,
    prepare(args, _params, call) {
      const type = args[0]!.type;
      if (!isNumeric(type)) throw callError(call, `cannot sum ${type}`);
      return {
        type: sumType(type),
        create: () => {
          let total = 0;
          return { add: ([x]) => void (total += x as number), result: () => total };
        },
      };
    },
  },
  avg: {
    minArgs: 1,
    maxArgs: 1,
    minParams: 0,
    maxParams: 0,
    prepare(args, _params, call) {
      const type = args[0]!.type;
      if (!isNumeric(type)) throw callError(call, `cannot average ${type}`);
      return {
        type: "Float64",
        create: () => {
          let total = 0;
          let n = 0;
          return {
            add: ([x]) => {
              total += x as number;
              n++;
            },
            result: () => total / n,
          };
        },
      };
    },
  },
  min: extreme(true),
  max: extreme(false),
  quantileExactWeighted,
};

const BY_LOWER_NAME = new Map(Object.entries(AGGREGATE_FUNCTIONS).map(([name, fn]) => [name.toLowerCase(), fn]));

export interface ResolvedAggregate {
  fn: AggregateFunction;
  /** The -If combinator: the last argument is a condition. */
  conditional: boolean;
}

/** Resolves an aggregate by name (case-insensitive), with the -If combinator; undefined when not one. */
export function aggregateFunction(name: string): ResolvedAggregate | undefined {
  const lower = name.toLowerCase();
  const direct = BY_LOWER_NAME.get(lower);
  if (direct) return { fn: direct, conditional: false };
  if (lower.endsWith("if")) {
    const base = BY_LOWER_NAME.get(lower.slice(0, -2));
    if (base) return { fn: base, conditional: true };
  }
  return undefined;
}
