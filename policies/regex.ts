// Policy regexes (path, header and query matches) run on RE2 semantics (re2js, a pure-JS port of
// RE2): matching takes time linear in the input, so a request cannot stall an isolate the way
// `/(a+)+b` does on a backtracking engine. Validation and the sidecar use this one module, so a
// regex the policy accepts is exactly one the data plane can run.
import { RE2JS } from "re2js";

/**
 * A compiled policy regex: true when it matches the whole value. A compiled RE2JS has this very
 * method, so the sidecar calls RE2 with nothing in between.
 */
export interface PolicyRegex {
  testExact(value: string): boolean;
}

const ENGINE = "policy regexes run on RE2 (linear-time matching, no backtracking)";

/**
 * The first construct of `source` that a backtracking engine accepts and RE2 deliberately lacks,
 * with the reason for people; RE2's own parser names only the token it choked on (it calls a
 * lookbehind an "invalid named capture"). Escapes and character classes are skipped, so `\\1` or
 * `[(?=]` are not mistaken for a backreference or a lookahead.
 */
function unsupportedConstruct(source: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (!inClass && next >= "1" && next <= "9") return `backreferences are not supported (found "\\${next}")`;
      if (!inClass && next === "k" && source[i + 2] === "<") return `backreferences are not supported (found "\\k<")`;
      if (next === "u") return `\\uXXXX escapes are not supported; write \\x{XXXX} (found "\\u")`;
      if (next === "c") return `control escapes are not supported; write \\x{01} to \\x{1F} (found "\\c")`;
      i++;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      continue;
    }
    if (c === "[") {
      inClass = true;
      // A "]" first in the class (after an optional "^") is a literal.
      if (source[i + 1] === "^") i++;
      if (source[i + 1] === "]") i++;
      continue;
    }
    if (c === "(" && source[i + 1] === "?") {
      const kind = source.slice(i + 2, i + 4);
      if (kind[0] === "=" || kind[0] === "!") return `lookahead is not supported (found "(?${kind[0]}")`;
      if (kind === "<=" || kind === "<!") return `lookbehind is not supported (found "(?${kind}")`;
    }
  }
  return undefined;
}

/**
 * Why `source` cannot be a policy regex, or undefined when it can. The reason names the construct
 * and, where there is one, what to write instead, e.g. `lookahead is not supported (found "(?=");
 * policy regexes run on RE2 ...`.
 */
export function policyRegexProblem(source: string): string | undefined {
  const construct = unsupportedConstruct(source);
  if (construct !== undefined) return `${construct}; ${ENGINE}`;
  try {
    // The source alone first: wrapped in the anchors, "a)|(b" would compile and match unanchored.
    RE2JS.compile(source);
    RE2JS.compile(anchored(source));
  } catch (err) {
    const message = err instanceof Error ? err.message.replace(/^error parsing regexp: /, "") : String(err);
    return `not a valid RE2 regular expression: ${message} (${ENGINE})`;
  }
  return undefined;
}

const ANCHOR_OPEN = "^(?:";
const ANCHOR_CLOSE = ")$";

/** The compiled snapshot's form of a policy regex: anchored, so it must match the whole value. */
export function anchored(source: string): string {
  return `${ANCHOR_OPEN}${source}${ANCHOR_CLOSE}`;
}

const NEVER: PolicyRegex = { testExact: () => false };

/**
 * Compiles the snapshot's (anchored) regex once per snapshot; throws when RE2 refuses it. RE2's
 * whole-input match does the anchoring itself, and runs several times faster on the bare regex
 * than on one wrapped in ^(?:...)$, so the wrapper is taken off again.
 */
export function compileAnchoredRegex(anchoredSource: string): PolicyRegex {
  const bare = anchoredSource.startsWith(ANCHOR_OPEN) && anchoredSource.endsWith(ANCHOR_CLOSE)
    ? anchoredSource.slice(ANCHOR_OPEN.length, -ANCHOR_CLOSE.length)
    : anchoredSource;
  return RE2JS.compile(bare);
}

/**
 * As compileAnchoredRegex, but a regex RE2 refuses, which can only come from a snapshot validated
 * before this engine, matches nothing rather than failing every request.
 */
export function compilePolicyRegex(anchoredSource: string): PolicyRegex {
  try {
    return compileAnchoredRegex(anchoredSource);
  } catch {
    return NEVER;
  }
}
