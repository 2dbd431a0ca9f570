// Splits a query into tokens: identifiers (bare, `backquoted` or "double-quoted"), numbers,
// 'strings', and operators. Keywords are bare identifiers; the parser decides which are keywords,
// so a column may be named like one when quoted.
import { SqlError } from "./errors.ts";

export type TokenKind = "ident" | "quoted-ident" | "number" | "string" | "op" | "eof";

export interface Token {
  kind: TokenKind;
  /** The identifier, the number's text, the string's unescaped value or the operator. */
  value: string;
  /** Offset of the token's first character in the query. */
  position: number;
  /** The token as written (quotes and escapes included). */
  text: string;
}

const OPERATORS = ["==", "!=", "<>", "<=", ">=", "||", "(", ")", ",", ".", "*", "+", "-", "/", "%", "=", "<", ">", ";", "?", ":", "[", "]", "{", "}"];

const isDigit = (c: string) => c >= "0" && c <= "9";
const isIdentStart = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isIdentPart = (c: string) => isIdentStart(c) || isDigit(c);

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", b: "\b", f: "\f", "\\": "\\", "'": "'", '"': '"', "`": "`" };

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    if (c === "-" && sql[i + 1] === "-") {
      while (i < sql.length && sql[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      if (end < 0) throw new SqlError("comment", "unterminated /* comment", i);
      i = end + 2;
      continue;
    }
    const start = i;
    if (isIdentStart(c)) {
      while (i < sql.length && isIdentPart(sql[i]!)) i++;
      const text = sql.slice(start, i);
      tokens.push({ kind: "ident", value: text, position: start, text });
      continue;
    }
    if (isDigit(c) || (c === "." && isDigit(sql[i + 1] ?? ""))) {
      i = scanNumber(sql, i);
      const text = sql.slice(start, i);
      if (i < sql.length && isIdentPart(sql[i]!)) {
        let end = i;
        while (end < sql.length && isIdentPart(sql[end]!)) end++;
        throw new SqlError(sql.slice(start, end), `malformed number "${sql.slice(start, end)}"`, start);
      }
      tokens.push({ kind: "number", value: text, position: start, text });
      continue;
    }
    if (c === "'") {
      const { value, end } = scanQuoted(sql, i, "'", "string");
      tokens.push({ kind: "string", value, position: start, text: sql.slice(start, end) });
      i = end;
      continue;
    }
    if (c === '"' || c === "`") {
      const { value, end } = scanQuoted(sql, i, c, "quoted identifier");
      if (value === "") throw new SqlError(sql.slice(start, end), "empty quoted identifier", start);
      tokens.push({ kind: "quoted-ident", value, position: start, text: sql.slice(start, end) });
      i = end;
      continue;
    }
    const op = OPERATORS.find((o) => sql.startsWith(o, i));
    if (!op) {
      const ch = String.fromCodePoint(sql.codePointAt(i)!);
      throw new SqlError(ch, `unexpected character ${JSON.stringify(ch)}`, i);
    }
    tokens.push({ kind: "op", value: op, position: start, text: op });
    i += op.length;
  }
  tokens.push({ kind: "eof", value: "", position: sql.length, text: "" });
  return tokens;
}

function scanNumber(sql: string, i: number): number {
  while (i < sql.length && isDigit(sql[i]!)) i++;
  if (sql[i] === "." && isDigit(sql[i + 1] ?? "")) {
    i++;
    while (i < sql.length && isDigit(sql[i]!)) i++;
  } else if (sql[i] === "." && !isIdentStart(sql[i + 1] ?? "")) {
    i++; // "1." is a number, "t.col" is not
  }
  if ((sql[i] === "e" || sql[i] === "E") && (isDigit(sql[i + 1] ?? "") || ((sql[i + 1] === "+" || sql[i + 1] === "-") && isDigit(sql[i + 2] ?? "")))) {
    i += 2;
    while (i < sql.length && isDigit(sql[i]!)) i++;
  }
  return i;
}

/** Reads a quoted string or identifier: the quote doubled or backslash-escaped stands for itself. */
function scanQuoted(sql: string, start: number, quote: string, what: string): { value: string; end: number } {
  let value = "";
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "\\") {
      const next = sql[i + 1];
      if (next === undefined) break;
      value += ESCAPES[next] ?? `\\${next}`;
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        value += quote;
        i += 2;
        continue;
      }
      return { value, end: i + 1 };
    }
    value += c;
    i++;
  }
  throw new SqlError(what, `unterminated ${what} starting at offset ${start}`, start);
}
