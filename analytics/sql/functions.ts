// The scalar functions and operators the engine knows, each checking its argument types (and
// refusing with a SqlError that names it) before returning its result type and evaluator.
// Operators arrive as calls with ClickHouse's names: plus, minus, equals, and, like, in, …
import type { CallExpr } from "./ast.ts";
import { callError, describeCall, truthy, type Compiled, type Env, type Evaluate } from "./compiled.ts";
import { addInterval, formatDateTime, parseDateTime, startOfInterval } from "./datetime.ts";
import { SqlError } from "./errors.ts";
import { compileLike, type LikeMatcher } from "./like.ts";
import {
  additionType,
  commonType,
  integerDivisionType,
  isInteger,
  isInterval,
  isNumeric,
  moduloType,
  negationType,
  subtractionType,
  wrapInteger,
  type IntegerType,
  type IntervalValue,
  type SqlType,
  type Value,
} from "./value-types.ts";

export interface ScalarFunction {
  minArgs: number;
  maxArgs: number;
  /** False for now(): the same arguments give a different value in another run. */
  pure?: boolean;
  compile<I>(args: Compiled<I>[], call: CallExpr): { type: SqlType; evaluate: Evaluate<I> };
}

type Built<I> = { type: SqlType; evaluate: Evaluate<I> };

const UTC_NAMES = new Set(["UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Zulu"]);

// ---- argument checks ----

function requireNumeric<I>(call: CallExpr, arg: Compiled<I>, which: string): void {
  if (!isNumeric(arg.type)) throw callError(call, `${which} must be a number, not ${arg.type}`);
}

function requireDateTime<I>(call: CallExpr, arg: Compiled<I>, which: string): void {
  if (arg.type !== "DateTime") throw callError(call, `${which} must be a DateTime (e.g. timestamp), not ${arg.type}`);
}

function requireString<I>(call: CallExpr, arg: Compiled<I>, which: string): void {
  if (arg.type !== "String") throw callError(call, `${which} must be a String, not ${arg.type}`);
}

/** Only UTC exists in Analytics Engine; a timezone argument must name it. */
function requireUtc<I>(call: CallExpr, arg: Compiled<I> | undefined): void {
  if (!arg) return;
  if (typeof arg.known !== "string" || !UTC_NAMES.has(arg.known)) {
    const text = typeof arg.known === "string" ? `'${arg.known}'` : "(expression)";
    throw new SqlError(`timezone ${text}`, `${describeCall(call)}: only the UTC timezone is supported, not ${text}`, call.position);
  }
}

/** A whole-number argument known while compiling (round's precision, for instance). */
function knownInteger<I>(call: CallExpr, arg: Compiled<I>, which: string): number {
  if (typeof arg.known !== "number" || !Number.isInteger(arg.known)) throw callError(call, `${which} must be a whole-number constant`);
  return arg.known;
}

export function parseNumber(text: string): number | null {
  const s = text.trim();
  if (s === "" || s.startsWith("0x") || s.startsWith("0X") || s.startsWith("0b") || s.startsWith("0o")) return null;
  const value = Number(s);
  return Number.isFinite(value) ? value : null;
}

/** Reads a String argument as a DateTime or a number; a string known while compiling is checked then. */
function convertedString<I>(call: CallExpr, arg: Compiled<I>, to: "DateTime" | "number"): Evaluate<I> {
  const convert = (text: string): number => {
    const value = to === "DateTime" ? parseDateTime(text) : parseNumber(text);
    if (value === null) {
      throw callError(call, `cannot read ${JSON.stringify(text)} as ${to === "DateTime" ? "a DateTime ('YYYY-MM-DD hh:mm:ss')" : "a number"}`);
    }
    return value;
  };
  if (typeof arg.known === "string") {
    const value = convert(arg.known);
    return () => value;
  }
  let lastText: string | null = null;
  let lastValue = 0;
  return (input, env) => {
    const text = arg.evaluate(input, env) as string;
    if (text !== lastText) {
      lastValue = convert(text);
      lastText = text;
    }
    return lastValue;
  };
}

/**
 * Two operands brought to one domain for comparison: numbers (numbers and DateTimes as seconds)
 * or strings. A String compared with a number or DateTime is read as one, as ClickHouse does.
 */
function comparable<I>(call: CallExpr, a: Compiled<I>, b: Compiled<I>): [Evaluate<I>, Evaluate<I>] {
  const numberLike = (t: SqlType) => isNumeric(t) || t === "DateTime";
  if (isInterval(a.type) || isInterval(b.type)) throw callError(call, "an INTERVAL cannot be compared; add it to a DateTime first (now() - INTERVAL '5' MINUTE)");
  if ((numberLike(a.type) && numberLike(b.type)) || (a.type === "String" && b.type === "String")) return [a.evaluate, b.evaluate];
  const [text, other] = a.type === "String" ? [a, b] : [b, a];
  // A String column is not read as a number row by row: that is almost always a missing quote.
  if (other.type !== "DateTime" && text.known === undefined) {
    throw callError(call, `cannot compare ${a.type} with ${b.type}; quote the number to compare strings (blob1 = '200'), or convert with toFloat64(…)`);
  }
  const converted = convertedString(call, text, other.type === "DateTime" ? "DateTime" : "number");
  return a.type === "String" ? [converted, b.evaluate] : [a.evaluate, converted];
}

function comparison(test: (x: number | string, y: number | string) => boolean): ScalarFunction {
  return {
    minArgs: 2,
    maxArgs: 2,
    compile(args, call) {
      const [left, right] = comparable(call, args[0]!, args[1]!);
      return { type: "UInt8", evaluate: (input, env) => (test(left(input, env) as number | string, right(input, env) as number | string) ? 1 : 0) };
    },
  };
}

function logical(kind: "and" | "or"): ScalarFunction {
  return {
    minArgs: 2,
    maxArgs: Infinity,
    compile(args, call) {
      args.forEach((a, i) => requireNumeric(call, a, `argument ${i + 1}`));
      const evaluators = args.map((a) => a.evaluate);
      if (kind === "and") return { type: "UInt8", evaluate: (input, env) => (evaluators.every((e) => truthy(e(input, env))) ? 1 : 0) };
      return { type: "UInt8", evaluate: (input, env) => (evaluators.some((e) => truthy(e(input, env))) ? 1 : 0) };
    },
  };
}

function like(caseInsensitive: boolean, negated: boolean): ScalarFunction {
  return {
    minArgs: 2,
    maxArgs: 2,
    compile(args, call) {
      const [text, pattern] = args as [Compiled<unknown>, Compiled<unknown>];
      requireString(call, text, "the left side");
      requireString(call, pattern, "the pattern");
      let matcher: LikeMatcher | null = typeof pattern.known === "string" ? compileLike(pattern.known, caseInsensitive) : null;
      let lastPattern = typeof pattern.known === "string" ? pattern.known : null;
      return {
        type: "UInt8",
        evaluate: (input, env) => {
          if (pattern.known === undefined) {
            const p = pattern.evaluate(input, env) as string;
            if (p !== lastPattern || !matcher) {
              matcher = compileLike(p, caseInsensitive);
              lastPattern = p;
            }
          }
          return matcher!(text.evaluate(input, env) as string) !== negated ? 1 : 0;
        },
      };
    },
  };
}

function membership(negated: boolean): ScalarFunction {
  return {
    minArgs: 2,
    maxArgs: Infinity,
    compile(args, call) {
      const [operand, ...list] = args as [Compiled<unknown>, ...Compiled<unknown>[]];
      if (isInterval(operand.type)) throw callError(call, "an INTERVAL cannot be compared");
      list.forEach((item, i) => {
        if (!item.constant) throw callError(call, `list item ${i + 1} must be a constant, not an expression over columns`);
        if (operand.type === "String" && item.type !== "String") throw callError(call, `list item ${i + 1} is ${item.type}; compare a String with strings`);
        if (operand.type !== "String" && item.type !== "String" && !isNumeric(item.type) && item.type !== "DateTime") throw callError(call, `list item ${i + 1} is ${item.type}`);
      });
      const domain = operand.type === "DateTime" ? "DateTime" : "number";
      const items = list.map((item) => (operand.type !== "String" && item.type === "String" ? convertedString(call, item, domain) : item.evaluate));
      // The list is constant within a run, but may read now(): build the set once per run.
      let members: Set<Value> | null = null;
      let membersEnv: Env | null = null;
      return {
        type: "UInt8",
        evaluate: (input, env) => {
          if (membersEnv !== env || !members) {
            members = new Set(items.map((item) => item(input, env)));
            membersEnv = env;
          }
          return members.has(operand.evaluate(input, env)) !== negated ? 1 : 0;
        },
      };
    },
  };
}

/** Arithmetic on numbers; `dateTime` handles a DateTime operand, `integerResult` checks for division by zero. */
function arithmetic(
  typeOf: (a: SqlType, b: SqlType) => SqlType,
  apply: (x: number, y: number, call: CallExpr, integerResult: boolean) => number,
  dateTime?: <I>(a: Compiled<I>, b: Compiled<I>, call: CallExpr) => Built<I> | null,
): ScalarFunction {
  return {
    minArgs: 2,
    maxArgs: 2,
    compile(args, call) {
      const [a, b] = args as [Compiled<unknown>, Compiled<unknown>];
      const special = dateTime?.(a, b, call);
      if (special) return special;
      requireNumeric(call, a, "the left side");
      requireNumeric(call, b, "the right side");
      const type = typeOf(a.type, b.type);
      const integerResult = isInteger(type);
      return { type, evaluate: (input, env) => apply(a.evaluate(input, env) as number, b.evaluate(input, env) as number, call, integerResult) };
    },
  };
}

function dateTimePlusMinus(sign: 1 | -1) {
  return <I>(a: Compiled<I>, b: Compiled<I>, call: CallExpr): Built<I> | null => {
    if (a.type === "DateTime" && isInterval(b.type)) {
      return { type: "DateTime", evaluate: (input, env) => addInterval(a.evaluate(input, env) as number, b.evaluate(input, env) as IntervalValue, sign) };
    }
    if (sign === 1 && isInterval(a.type) && b.type === "DateTime") {
      return { type: "DateTime", evaluate: (input, env) => addInterval(b.evaluate(input, env) as number, a.evaluate(input, env) as IntervalValue, 1) };
    }
    if (a.type === "DateTime" && isInteger(b.type)) {
      return { type: "DateTime", evaluate: (input, env) => (a.evaluate(input, env) as number) + sign * (b.evaluate(input, env) as number) };
    }
    if (sign === -1 && a.type === "DateTime" && b.type === "DateTime") {
      return { type: "Int64", evaluate: (input, env) => (a.evaluate(input, env) as number) - (b.evaluate(input, env) as number) };
    }
    if (a.type === "DateTime" || b.type === "DateTime" || isInterval(a.type) || isInterval(b.type)) {
      throw callError(call, `cannot apply to ${a.type} and ${b.type}; write DateTime ${sign === 1 ? "+" : "-"} INTERVAL '5' MINUTE`);
    }
    return null;
  };
}

function divisionByZero(call: CallExpr): never {
  throw callError(call, "division by zero");
}

function integerConversion(type: IntegerType): ScalarFunction {
  return {
    minArgs: 1,
    maxArgs: 1,
    compile(args, call) {
      const arg = args[0]!;
      if (arg.type === "String") {
        const read = convertedString(call, arg, "number");
        return { type, evaluate: (input, env) => wrapInteger(read(input, env) as number, type) };
      }
      if (!isNumeric(arg.type) && arg.type !== "DateTime") throw callError(call, `cannot convert ${arg.type}`);
      return { type, evaluate: (input, env) => wrapInteger(arg.evaluate(input, env) as number, type) };
    },
  };
}

/** Round half to even, as C's nearbyint does for ClickHouse's round(Float64). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function rounding(kind: "round" | "floor" | "ceil"): ScalarFunction {
  const step = kind === "round" ? roundHalfEven : kind === "floor" ? Math.floor : Math.ceil;
  return {
    minArgs: 1,
    maxArgs: 2,
    compile(args, call) {
      const arg = args[0]!;
      requireNumeric(call, arg, "the value");
      const digits = args[1] ? knownInteger(call, args[1], "the number of decimal places") : 0;
      if (Math.abs(digits) > 15) throw callError(call, "the number of decimal places must be between -15 and 15");
      if (isInteger(arg.type) && digits >= 0) return { type: arg.type, evaluate: arg.evaluate };
      const scale = 10 ** Math.abs(digits);
      const apply = digits >= 0 ? (x: number) => step(x * scale) / scale : (x: number) => step(x / scale) * scale;
      return { type: arg.type, evaluate: (input, env) => apply(arg.evaluate(input, env) as number) };
    },
  };
}

function startOf(amount: number, unit: IntervalValue["unit"]): ScalarFunction {
  const interval: IntervalValue = { amount, unit };
  return {
    minArgs: 1,
    maxArgs: 2,
    compile(args, call) {
      requireDateTime(call, args[0]!, "the first argument");
      requireUtc(call, args[1]);
      const arg = args[0]!;
      return { type: "DateTime", evaluate: (input, env) => startOfInterval(arg.evaluate(input, env) as number, interval) };
    },
  };
}

// Declared apart: an object literal's own "toString" key defeats contextual typing.
const toStringFunction: ScalarFunction = {
  minArgs: 1,
  maxArgs: 1,
  compile(args, call) {
    const arg = args[0]!;
    if (arg.type === "String") return { type: "String", evaluate: arg.evaluate };
    if (arg.type === "DateTime") return { type: "String", evaluate: (input, env) => formatDateTime(arg.evaluate(input, env) as number) };
    requireNumeric(call, arg, "the argument");
    return { type: "String", evaluate: (input, env) => String(arg.evaluate(input, env)) };
  },
};

export const SCALAR_FUNCTIONS: Record<string, ScalarFunction> = {
  plus: arithmetic(additionType, (x, y) => x + y, dateTimePlusMinus(1)),
  minus: arithmetic(subtractionType, (x, y) => x - y, dateTimePlusMinus(-1)),
  multiply: arithmetic(additionType, (x, y) => x * y),
  divide: arithmetic(() => "Float64", (x, y) => x / y),
  modulo: arithmetic(moduloType, (x, y, call, integerResult) => {
    if (integerResult && y === 0) divisionByZero(call);
    return x % y;
  }),
  intDiv: arithmetic(integerDivisionType, (x, y, call) => {
    if (y === 0) divisionByZero(call);
    const quotient = Math.trunc(x / y);
    if (!Number.isFinite(quotient)) throw callError(call, "cannot divide an infinite or NaN value to a whole number");
    return quotient;
  }),
  negate: {
    minArgs: 1,
    maxArgs: 1,
    compile(args, call) {
      const arg = args[0]!;
      requireNumeric(call, arg, "the operand");
      return { type: negationType(arg.type), evaluate: (input, env) => -(arg.evaluate(input, env) as number) };
    },
  },
  abs: {
    minArgs: 1,
    maxArgs: 1,
    compile(args, call) {
      const arg = args[0]!;
      requireNumeric(call, arg, "the argument");
      const type: SqlType = arg.type.startsWith("Int") ? (`U${arg.type}` as SqlType) : arg.type;
      return { type, evaluate: (input, env) => Math.abs(arg.evaluate(input, env) as number) };
    },
  },
  equals: comparison((x, y) => x === y),
  notEquals: comparison((x, y) => x !== y),
  less: comparison((x, y) => x < y),
  lessOrEquals: comparison((x, y) => x <= y),
  greater: comparison((x, y) => x > y),
  greaterOrEquals: comparison((x, y) => x >= y),
  and: logical("and"),
  or: logical("or"),
  not: {
    minArgs: 1,
    maxArgs: 1,
    compile(args, call) {
      const arg = args[0]!;
      requireNumeric(call, arg, "the operand");
      return { type: "UInt8", evaluate: (input, env) => (truthy(arg.evaluate(input, env)) ? 0 : 1) };
    },
  },
  in: membership(false),
  notIn: membership(true),
  like: like(false, false),
  notLike: like(false, true),
  ilike: like(true, false),
  notILike: like(true, true),
  if: {
    minArgs: 3,
    maxArgs: 3,
    compile(args, call) {
      const [condition, whenTrue, whenFalse] = args as [Compiled<unknown>, Compiled<unknown>, Compiled<unknown>];
      requireNumeric(call, condition, "the condition");
      const type = commonType(whenTrue.type, whenFalse.type);
      if (!type || isInterval(type)) throw callError(call, `the two branches have no common type (${whenTrue.type} and ${whenFalse.type})`);
      return { type, evaluate: (input, env) => (truthy(condition.evaluate(input, env)) ? whenTrue : whenFalse).evaluate(input, env) };
    },
  },
  intDivOrZero: {
    minArgs: 2,
    maxArgs: 2,
    compile(args, call) {
      const [a, b] = args as [Compiled<unknown>, Compiled<unknown>];
      requireNumeric(call, a, "the dividend");
      requireNumeric(call, b, "the divisor");
      return {
        type: integerDivisionType(a.type, b.type),
        evaluate: (input, env) => {
          const y = b.evaluate(input, env) as number;
          const quotient = y === 0 ? 0 : Math.trunc((a.evaluate(input, env) as number) / y);
          return Number.isFinite(quotient) ? quotient : 0;
        },
      };
    },
  },
  round: rounding("round"),
  floor: rounding("floor"),
  ceil: rounding("ceil"),
  toUInt8: integerConversion("UInt8"),
  toUInt16: integerConversion("UInt16"),
  toUInt32: integerConversion("UInt32"),
  toUInt64: integerConversion("UInt64"),
  toInt8: integerConversion("Int8"),
  toInt16: integerConversion("Int16"),
  toInt32: integerConversion("Int32"),
  toInt64: integerConversion("Int64"),
  toFloat64: {
    minArgs: 1,
    maxArgs: 1,
    compile(args, call) {
      const arg = args[0]!;
      if (arg.type === "String") return { type: "Float64", evaluate: convertedString(call, arg, "number") };
      if (!isNumeric(arg.type) && arg.type !== "DateTime") throw callError(call, `cannot convert ${arg.type}`);
      return { type: "Float64", evaluate: arg.evaluate };
    },
  },
  toString: toStringFunction,
  now: {
    minArgs: 0,
    maxArgs: 1,
    pure: false,
    compile(args, call) {
      requireUtc(call, args[0]);
      return { type: "DateTime", evaluate: (_input, env) => env.nowSeconds };
    },
  },
  toDateTime: {
    minArgs: 1,
    maxArgs: 2,
    compile(args, call) {
      const arg = args[0]!;
      requireUtc(call, args[1]);
      if (arg.type === "String") return { type: "DateTime", evaluate: convertedString(call, arg, "DateTime") };
      if (arg.type === "DateTime") return { type: "DateTime", evaluate: arg.evaluate };
      requireNumeric(call, arg, "the argument");
      return { type: "DateTime", evaluate: (input, env) => Math.trunc(arg.evaluate(input, env) as number) };
    },
  },
  toUnixTimestamp: {
    minArgs: 1,
    maxArgs: 2,
    compile(args, call) {
      const arg = args[0]!;
      requireUtc(call, args[1]);
      if (arg.type === "String") return { type: "UInt32", evaluate: convertedString(call, arg, "DateTime") };
      requireDateTime(call, arg, "the argument");
      return { type: "UInt32", evaluate: arg.evaluate };
    },
  },
  toStartOfInterval: {
    minArgs: 2,
    maxArgs: 3,
    compile(args, call) {
      const [time, intervalArg] = args as [Compiled<unknown>, Compiled<unknown>];
      requireDateTime(call, time, "the first argument");
      const interval = intervalArg.known;
      if (!isInterval(intervalArg.type) || typeof interval !== "object") {
        throw callError(call, "the second argument must be an INTERVAL literal, e.g. INTERVAL '5' MINUTE");
      }
      if (interval.amount <= 0) throw callError(call, "the interval must be positive");
      requireUtc(call, args[2]);
      return { type: "DateTime", evaluate: (input, env) => startOfInterval(time.evaluate(input, env) as number, interval) };
    },
  },
  toStartOfMinute: startOf(1, "MINUTE"),
  toStartOfFiveMinutes: startOf(5, "MINUTE"),
  toStartOfTenMinutes: startOf(10, "MINUTE"),
  toStartOfFifteenMinutes: startOf(15, "MINUTE"),
  toStartOfHour: startOf(1, "HOUR"),
  toStartOfDay: startOf(1, "DAY"),
};

/** Function names are case-insensitive, as in Analytics Engine's SQL. */
const BY_LOWER_NAME = new Map(Object.entries(SCALAR_FUNCTIONS).map(([name, fn]) => [name.toLowerCase(), fn]));

export function scalarFunction(name: string): ScalarFunction | undefined {
  return BY_LOWER_NAME.get(name.toLowerCase());
}

/** Functions an operator writes by name (operators are also callable by their ClickHouse names). */
const OPERATOR_NAMES = new Set(["plus", "minus", "multiply", "divide", "modulo", "negate", "equals", "notEquals", "less", "lessOrEquals", "greater", "greaterOrEquals", "and", "or", "not", "in", "notIn", "like", "notLike", "ilike", "notILike"]);
export const FUNCTION_NAMES = Object.keys(SCALAR_FUNCTIONS).filter((name) => !OPERATOR_NAMES.has(name));
