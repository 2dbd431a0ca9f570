// The text ClickHouse gives an expression: the name of an unaliased result column
// (`count()`, `plus(double1, 1)`, `toStartOfInterval(timestamp, toIntervalMinute(5))`), and the
// key by which GROUP BY expressions are recognised in SELECT, HAVING and ORDER BY.
import type { Expr } from "./ast.ts";

/** The ClickHouse-style text of an expression, for naming a result column. */
export function exprText(expr: Expr): string {
  return text(expr, false);
}

/** The same text with function names lower-cased: two spellings of one expression get one key. */
export function exprKey(expr: Expr): string {
  return text(expr, true);
}

function text(expr: Expr, canonical: boolean): string {
  switch (expr.kind) {
    case "literal":
      if (expr.literalType === "string") return `'${(expr.value as string).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
      if (expr.literalType === "bool") return expr.value ? "true" : "false";
      return String(expr.value);
    case "interval":
      return `toInterval${expr.unit[0]}${expr.unit.slice(1).toLowerCase()}(${expr.amount})`;
    case "column":
      return expr.name;
    case "star":
      return "*";
    case "call": {
      const args = expr.args.filter((a) => a.kind !== "star").map((a) => text(a, canonical)).join(", ");
      const params = expr.params ? `(${expr.params.map((p) => text(p, canonical)).join(", ")})` : "";
      return `${canonical ? expr.name.toLowerCase() : expr.name}${params}(${expr.distinct ? "DISTINCT " : ""}${args})`;
    }
  }
}
