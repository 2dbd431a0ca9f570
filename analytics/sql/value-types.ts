// The types values have in a query, named as ClickHouse names them (they appear in the answer's
// `meta`), and ClickHouse's rules for the type of an arithmetic result. Values are JavaScript
// numbers (integers, floats, and DateTime as seconds since the epoch), strings, or intervals.
import type { IntervalUnit } from "./ast.ts";

export type IntegerType = "UInt8" | "UInt16" | "UInt32" | "UInt64" | "Int8" | "Int16" | "Int32" | "Int64";
export type IntervalType = `Interval${"Second" | "Minute" | "Hour" | "Day" | "Week" | "Month" | "Quarter" | "Year"}`;
export type SqlType = IntegerType | "Float64" | "String" | "DateTime" | IntervalType;

export interface IntervalValue {
  amount: number;
  unit: IntervalUnit;
}

/** A value during evaluation. DateTime values are whole seconds since the epoch (UTC). */
export type Value = number | string | IntervalValue;

const INTEGER_BITS: Record<IntegerType, number> = { UInt8: 8, UInt16: 16, UInt32: 32, UInt64: 64, Int8: 8, Int16: 16, Int32: 32, Int64: 64 };

export const isInteger = (t: SqlType): t is IntegerType => Object.hasOwn(INTEGER_BITS, t);
export const isNumeric = (t: SqlType): boolean => isInteger(t) || t === "Float64";
export const isInterval = (t: SqlType): t is IntervalType => t.startsWith("Interval");
/** Float64 counts as signed, as in ClickHouse's type rules. */
const isSigned = (t: SqlType): boolean => t === "Float64" || t.startsWith("Int");
const bitsOf = (t: SqlType): number => (isInteger(t) ? INTEGER_BITS[t] : 64);

export function integerType(signed: boolean, bits: number): IntegerType {
  const size = Math.min(64, Math.max(8, bits));
  return `${signed ? "Int" : "UInt"}${size}` as IntegerType;
}

export function intervalType(unit: IntervalUnit): IntervalType {
  return `Interval${unit[0]}${unit.slice(1).toLowerCase()}` as IntervalType;
}

/** ClickHouse types an integer literal by the smallest type that holds it. */
export function integerLiteralType(value: number): IntegerType {
  if (value >= 0) return value <= 0xff ? "UInt8" : value <= 0xffff ? "UInt16" : value <= 0xffffffff ? "UInt32" : "UInt64";
  return value >= -0x80 ? "Int8" : value >= -0x8000 ? "Int16" : value >= -0x80000000 ? "Int32" : "Int64";
}

/** plus and multiply: one size up from the wider operand, signed if either is. */
export function additionType(a: SqlType, b: SqlType): SqlType {
  if (a === "Float64" || b === "Float64") return "Float64";
  return integerType(isSigned(a) || isSigned(b), 2 * Math.max(bitsOf(a), bitsOf(b)));
}

/** minus: one size up from the wider operand, always signed. */
export function subtractionType(a: SqlType, b: SqlType): SqlType {
  if (a === "Float64" || b === "Float64") return "Float64";
  return integerType(true, 2 * Math.max(bitsOf(a), bitsOf(b)));
}

/** intDiv: as wide as the dividend, signed if either operand is (a Float64 dividend gives Int64). */
export function integerDivisionType(a: SqlType, b: SqlType): IntegerType {
  return integerType(isSigned(a) || isSigned(b), bitsOf(a));
}

/** modulo: as wide as the divisor (one size up when the dividend is signed). */
export function moduloType(a: SqlType, b: SqlType): SqlType {
  if (a === "Float64" || b === "Float64") return "Float64";
  return isSigned(a) ? integerType(true, 2 * bitsOf(b)) : integerType(false, bitsOf(b));
}

export function negationType(a: SqlType): SqlType {
  if (a === "Float64") return "Float64";
  return integerType(true, isSigned(a) ? bitsOf(a) : 2 * bitsOf(a));
}

/** sum() accumulates integers in 64 bits and floats in Float64. */
export function sumType(a: SqlType): SqlType {
  if (a === "Float64") return "Float64";
  return isSigned(a) ? "Int64" : "UInt64";
}

/** The type both branches of if() are converted to, or null when there is none. */
export function commonType(a: SqlType, b: SqlType): SqlType | null {
  if (a === b) return a;
  if (isNumeric(a) && isNumeric(b)) {
    if (a === "Float64" || b === "Float64") return "Float64";
    const signed = isSigned(a) || isSigned(b);
    const mixed = isSigned(a) !== isSigned(b);
    // An unsigned operand needs one more size to fit in a signed type.
    const bits = Math.max(isSigned(a) || !mixed ? bitsOf(a) : 2 * bitsOf(a), isSigned(b) || !mixed ? bitsOf(b) : 2 * bitsOf(b));
    return bits > 64 ? null : integerType(signed, bits);
  }
  return null;
}

/** Wraps a whole number into an integer type's range, as a C++ cast does. */
export function wrapInteger(value: number, type: IntegerType): number {
  if (!Number.isFinite(value)) return 0;
  const whole = Math.trunc(value);
  const bits = INTEGER_BITS[type];
  if (bits === 64) return type === "UInt64" && whole < 0 ? whole + 2 ** 64 : whole;
  const range = 2 ** bits;
  let wrapped = ((whole % range) + range) % range;
  if (isSigned(type) && wrapped >= range / 2) wrapped -= range;
  return wrapped;
}
