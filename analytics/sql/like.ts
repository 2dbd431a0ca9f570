// LIKE patterns: % matches any run of characters, _ one character, a backslash escapes either.
// Compiled once per pattern into a matcher that never backtracks more than one star at a time
// (time bounded by pattern length × string length), instead of a backtracking regex.

type Part = { kind: "char"; char: string } | { kind: "one" } | { kind: "any" };

export type LikeMatcher = (text: string) => boolean;

export function compileLike(pattern: string, caseInsensitive: boolean): LikeMatcher {
  const parts = parsePattern(caseInsensitive ? pattern.toLowerCase() : pattern);
  const fold = (s: string) => (caseInsensitive ? s.toLowerCase() : s);
  const literal = (from: number, to: number) => parts.slice(from, to).map((p) => (p.kind === "char" ? p.char : "")).join("");
  const isLiteral = (from: number, to: number) => parts.slice(from, to).every((p) => p.kind === "char");
  const n = parts.length;
  // The shapes people write most often get a direct string operation.
  if (isLiteral(0, n)) {
    const exact = literal(0, n);
    return (text) => fold(text) === exact;
  }
  if (parts[n - 1]?.kind === "any" && isLiteral(0, n - 1)) {
    const prefix = literal(0, n - 1);
    return (text) => fold(text).startsWith(prefix);
  }
  if (parts[0]?.kind === "any" && isLiteral(1, n)) {
    const suffix = literal(1, n);
    return (text) => fold(text).endsWith(suffix);
  }
  if (n >= 2 && parts[0]?.kind === "any" && parts[n - 1]?.kind === "any" && isLiteral(1, n - 1)) {
    const middle = literal(1, n - 1);
    return (text) => fold(text).includes(middle);
  }
  return (text) => matchParts(parts, Array.from(fold(text)));
}

function parsePattern(pattern: string): Part[] {
  const parts: Part[] = [];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "\\" && i + 1 < chars.length) {
      parts.push({ kind: "char", char: chars[++i]! });
    } else if (c === "%") {
      if (parts[parts.length - 1]?.kind !== "any") parts.push({ kind: "any" });
    } else if (c === "_") {
      parts.push({ kind: "one" });
    } else {
      parts.push({ kind: "char", char: c });
    }
  }
  return parts;
}

/** Wildcard matching that remembers only the last % to retry from. */
function matchParts(parts: Part[], text: string[]): boolean {
  let p = 0;
  let t = 0;
  let starPart = -1;
  let starText = 0;
  while (t < text.length) {
    const part = parts[p];
    if (part && (part.kind === "one" || (part.kind === "char" && part.char === text[t]))) {
      p++;
      t++;
    } else if (part?.kind === "any") {
      starPart = p++;
      starText = t;
    } else if (starPart >= 0) {
      p = starPart + 1;
      t = ++starText;
    } else {
      return false;
    }
  }
  while (parts[p]?.kind === "any") p++;
  return p === parts.length;
}
