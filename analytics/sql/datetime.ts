// DateTime arithmetic in UTC (Analytics Engine's only timezone), on whole seconds since the epoch:
// the text form the SQL API answers with, parsing literals, INTERVAL arithmetic and
// toStartOfInterval with ClickHouse's rounding rules.
import type { IntervalUnit } from "./ast.ts";
import type { IntervalValue } from "./value-types.ts";

const SECONDS: Partial<Record<IntervalUnit, number>> = { SECOND: 1, MINUTE: 60, HOUR: 3600, DAY: 86_400, WEEK: 604_800 };
const MONTHS: Partial<Record<IntervalUnit, number>> = { MONTH: 1, QUARTER: 3, YEAR: 12 };
const DAY_SECONDS = 86_400;

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** "YYYY-MM-DD hh:mm:ss", as the SQL API writes a DateTime. */
export function formatDateTime(seconds: number): string {
  const d = new Date(Math.floor(seconds) * 1000);
  if (Number.isNaN(d.getTime())) return "1970-01-01 00:00:00";
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/**
 * Reads 'YYYY-MM-DD hh:mm:ss', 'YYYY-MM-DD', the same with a T and a trailing Z, or a number of
 * seconds since the epoch. Returns null for anything else.
 */
export function parseDateTime(text: string): number | null {
  const s = text.trim();
  if (s.length > 0 && [...s].every((c) => c >= "0" && c <= "9")) return s.length <= 10 ? Number(s) : null;
  const digits = (from: number, count: number): number | null => {
    const part = s.slice(from, from + count);
    if (part.length !== count || ![...part].every((c) => c >= "0" && c <= "9")) return null;
    return Number(part);
  };
  const year = digits(0, 4);
  const month = digits(5, 2);
  const day = digits(8, 2);
  if (year === null || month === null || day === null || s[4] !== "-" || s[7] !== "-") return null;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let rest = s.slice(10);
  if (rest.length > 0) {
    if (rest[0] !== " " && rest[0] !== "T") return null;
    const h = digits(11, 2);
    const m = digits(14, 2);
    const sec = digits(17, 2);
    if (h === null || m === null || sec === null || s[13] !== ":" || s[16] !== ":") return null;
    [hour, minute, second] = [h, m, sec];
    rest = s.slice(19);
    if (rest !== "" && rest !== "Z") return null;
  }
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month - 1) || hour > 23 || minute > 59 || second > 59) return null;
  return utcSeconds(year, month - 1, day, hour, minute, second);
}

function daysInMonth(year: number, monthIndex: number): number {
  return new Date(utcSeconds(year, monthIndex + 1, 0) * 1000).getUTCDate();
}

/** Seconds since the epoch of a UTC date; unlike Date.UTC, years 0..99 are not read as 19xx. */
function utcSeconds(year: number, monthIndex: number, day: number, hour = 0, minute = 0, second = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, monthIndex, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime() / 1000;
}

/** `seconds + sign * interval`; months and years move the calendar and clamp the day (Mar 31 - 1 MONTH = Feb 28/29). */
export function addInterval(seconds: number, interval: IntervalValue, sign: 1 | -1): number {
  const fixed = SECONDS[interval.unit];
  if (fixed !== undefined) return seconds + sign * interval.amount * fixed;
  const months = sign * interval.amount * (MONTHS[interval.unit] ?? 1);
  const d = new Date(seconds * 1000);
  const totalMonths = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const year = Math.floor(totalMonths / 12);
  const monthIndex = totalMonths - year * 12;
  const day = Math.min(d.getUTCDate(), daysInMonth(year, monthIndex));
  return utcSeconds(year, monthIndex, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds());
}

/**
 * toStartOfInterval, with ClickHouse's origins: seconds and minutes count from the epoch, hours
 * from midnight, days from the epoch, weeks from a Monday, months and quarters from January 1900
 * (so 3-month buckets are quarters), years from year 0.
 */
export function startOfInterval(seconds: number, interval: IntervalValue): number {
  const n = interval.amount;
  const t = Math.floor(seconds);
  switch (interval.unit) {
    case "SECOND":
    case "MINUTE": {
      const size = n * SECONDS[interval.unit]!;
      return Math.floor(t / size) * size;
    }
    case "HOUR": {
      const midnight = Math.floor(t / DAY_SECONDS) * DAY_SECONDS;
      const size = n * 3600;
      return midnight + Math.floor((t - midnight) / size) * size;
    }
    case "DAY": {
      const day = Math.floor(t / DAY_SECONDS);
      return Math.floor(day / n) * n * DAY_SECONDS;
    }
    case "WEEK": {
      // 1970-01-01 was a Thursday; day 4 (1970-01-05) is the first Monday.
      const day = Math.floor(t / DAY_SECONDS);
      const size = 7 * n;
      return (4 + Math.floor((day - 4) / size) * size) * DAY_SECONDS;
    }
    case "MONTH":
    case "QUARTER": {
      const d = new Date(t * 1000);
      const size = n * MONTHS[interval.unit]!;
      const monthsSince1900 = (d.getUTCFullYear() - 1900) * 12 + d.getUTCMonth();
      const start = Math.floor(monthsSince1900 / size) * size;
      return utcSeconds(1900 + Math.floor(start / 12), start - Math.floor(start / 12) * 12, 1);
    }
    case "YEAR": {
      const year = new Date(t * 1000).getUTCFullYear();
      return utcSeconds(Math.floor(year / n) * n, 0, 1);
    }
  }
}
