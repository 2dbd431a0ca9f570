// The parsed form of a query. Operators become function calls with ClickHouse's names
// (`a + b` is plus(a, b), `a = b` is equals(a, b)), as ClickHouse itself does, so the analyzer
// and evaluator know one kind of node for both and unnamed result columns read like ClickHouse's.

export type IntervalUnit = "SECOND" | "MINUTE" | "HOUR" | "DAY" | "WEEK" | "MONTH" | "QUARTER" | "YEAR";
export const INTERVAL_UNITS: readonly IntervalUnit[] = ["SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR"];

export type Expr = LiteralExpr | IntervalExpr | ColumnExpr | StarExpr | CallExpr;

export interface LiteralExpr {
  kind: "literal";
  value: number | string | boolean;
  /** "integer" literals are whole numbers written without a point or exponent. */
  literalType: "integer" | "float" | "string" | "bool";
  position: number;
}

export interface IntervalExpr {
  kind: "interval";
  amount: number;
  unit: IntervalUnit;
  position: number;
}

/** A bare or quoted identifier: a column of the dataset or an alias from the SELECT list. */
export interface ColumnExpr {
  kind: "column";
  name: string;
  position: number;
}

/** `*`: in `SELECT *` and `count(*)` only. */
export interface StarExpr {
  kind: "star";
  position: number;
}

export interface CallExpr {
  kind: "call";
  /** As written for functions; ClickHouse's name (plus, equals, and, …) for operators. */
  name: string;
  /** The operator as written (`+`, `AND`, `NOT LIKE`), when the call came from one. */
  operator?: string;
  /** Parameters of a parametric aggregate: the (0.95) in quantileExactWeighted(0.95)(x, w). */
  params: Expr[] | null;
  args: Expr[];
  distinct: boolean;
  position: number;
}

export interface SelectItem {
  expr: Expr;
  alias: string | null;
  position: number;
}

export interface OrderItem {
  expr: Expr;
  descending: boolean;
}

export interface SelectStatement {
  distinct: boolean;
  items: SelectItem[];
  /** The dataset of FROM; null for a query without FROM (`SELECT 1`). */
  dataset: string | null;
  where: Expr | null;
  groupBy: Expr[];
  having: Expr | null;
  orderBy: OrderItem[];
  limit: number | null;
  offset: number;
  format: "JSON" | null;
}
