// What the analyzer turns an expression into: its type and a closure that evaluates it. Row-phase
// closures read an AnalyticsRow; group-phase closures read a finished group (its GROUP BY key
// values and aggregate results).
import type { CallExpr } from "./ast.ts";
import { SqlError } from "./errors.ts";
import type { SqlType, Value } from "./value-types.ts";

/** What stays the same for a whole query run: now() is read once. */
export interface Env {
  nowSeconds: number;
}

export type Evaluate<I> = (input: I, env: Env) => Value;

export interface Compiled<I> {
  type: SqlType;
  evaluate: Evaluate<I>;
  /** Reads no column and no aggregate (it may still read now()). */
  constant: boolean;
  /** The value, when it is known while compiling (literals, and pure functions of literals). */
  known?: Value;
}

/** "function intDiv" or "operator +": how errors name a call. */
export function describeCall(call: CallExpr): string {
  return call.operator ? `operator ${call.operator}` : `function ${call.name}`;
}

export function callError(call: CallExpr, message: string): SqlError {
  return new SqlError(describeCall(call), `${describeCall(call)}: ${message}`, call.position);
}

/** A filter keeps a row when its condition is a non-zero number (NaN counts as true, as in C++). */
export const truthy = (value: Value): boolean => typeof value === "number" && value !== 0;
