// Recursive-descent parser for Analytics Engine's SQL dialect (ClickHouse-flavoured): one SELECT
// over one dataset. Operator precedence, lowest first: OR, AND, NOT, comparisons (= != < <= > >=,
// [NOT] LIKE/ILIKE, [NOT] IN, [NOT] BETWEEN), + -, * / %, unary minus. Anything outside the
// supported subset is refused with a SqlError naming it; nothing here is matched with a regex.
import { INTERVAL_UNITS, type CallExpr, type Expr, type IntervalUnit, type OrderItem, type SelectItem, type SelectStatement } from "./ast.ts";
import { SqlError } from "./errors.ts";
import { tokenize, type Token } from "./tokenizer.ts";

/** Words that end an expression or a clause, so they are never taken as an implicit alias. */
const RESERVED = new Set([
  "ALL", "AND", "ANY", "ARRAY", "AS", "ASC", "ASCENDING", "ASOF", "BETWEEN", "BY", "CASE", "COLLATE", "CROSS", "DESC",
  "DESCENDING", "DISTINCT", "ELSE", "END", "EXCEPT", "FETCH", "FINAL", "FORMAT", "FROM", "FULL", "GLOBAL", "GROUP",
  "HAVING", "ILIKE", "IN", "INNER", "INTERSECT", "INTERVAL", "INTO", "IS", "JOIN", "LEFT", "LIKE", "LIMIT", "NOT",
  "NULLS", "OFFSET", "ON", "OR", "ORDER", "OUTER", "OVER", "PASTE", "PREWHERE", "QUALIFY", "RIGHT", "SAMPLE", "SELECT",
  "SEMI", "SETTINGS", "THEN", "UNION", "USING", "WHEN", "WHERE", "WINDOW", "WITH",
]);

const JOIN_WORDS = new Set(["JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "ANY", "ALL", "ASOF", "SEMI", "ANTI", "GLOBAL", "OUTER", "PASTE"]);

const COMPARISONS: Record<string, string> = { "=": "equals", "==": "equals", "!=": "notEquals", "<>": "notEquals", "<": "less", "<=": "lessOrEquals", ">": "greater", ">=": "greaterOrEquals" };

/** The largest integer a literal may have: beyond it JavaScript numbers lose whole-number precision. */
const MAX_INTEGER_LITERAL = Number.MAX_SAFE_INTEGER;
/** Longest query accepted, in characters. */
export const MAX_QUERY_LENGTH = 100_000;
/** Deepest expression accepted (nesting of parentheses, calls and operators), so nothing recursing over it runs out of stack. */
export const MAX_EXPRESSION_DEPTH = 256;

/** Parses one SELECT statement. Throws SqlError for anything malformed or unsupported. */
export function parseSelect(sql: string): SelectStatement {
  if (sql.length > MAX_QUERY_LENGTH) throw new SqlError("query length", `the query is ${sql.length} characters long; at most ${MAX_QUERY_LENGTH} are accepted`, MAX_QUERY_LENGTH);
  return new Parser(tokenize(sql)).statement();
}

class Parser {
  private index = 0;
  /** How deep the parser has recursed into nested expressions. */
  private nesting = 0;
  /** The depth of every call node built, to bound trees built by loops (a + b + c + …) too. */
  private readonly depths = new WeakMap<Expr, number>();

  constructor(private readonly tokens: Token[]) {}

  statement(): SelectStatement {
    const first = this.peek();
    if (this.isWord("WITH")) this.refuse(first, "WITH", "WITH (common table expressions) is not supported; write the expression in the query");
    if (this.isWord("EXPLAIN")) this.refuse(first, "EXPLAIN", "EXPLAIN is not supported");
    if (first.kind === "ident" && !this.isWord("SELECT")) {
      this.refuse(first, `statement ${first.value.toUpperCase()}`, `only SELECT statements are supported, not ${first.value.toUpperCase()}`);
    }
    if (first.kind === "op" && first.value === "(") this.refuse(first, "subquery", "subqueries are not supported");
    this.expectWord("SELECT");
    const distinct = this.acceptWord("DISTINCT");
    if (this.isWord("ON") && distinct) this.refuse(this.peek(), "DISTINCT ON", "DISTINCT ON is not supported");
    if (this.isWord("TOP")) this.refuse(this.peek(), "TOP", "TOP is not supported; use LIMIT");
    const items = this.selectList();
    let dataset: string | null = null;
    if (this.acceptWord("FROM")) dataset = this.fromClause();
    const where = this.acceptWord("WHERE") ? this.expression() : null;
    let groupBy: Expr[] = [];
    if (this.acceptWord("GROUP")) {
      this.expectWord("BY");
      if (this.isWord("ALL")) this.refuse(this.peek(), "GROUP BY ALL", "GROUP BY ALL is not supported; list the expressions");
      groupBy = this.expressionList();
      if (this.isWord("WITH")) this.refuse(this.peek(), `WITH ${this.peek(1).value.toUpperCase()}`, "GROUP BY … WITH ROLLUP/CUBE/TOTALS is not supported");
    }
    const having = this.acceptWord("HAVING") ? this.expression() : null;
    if (this.isWord("WINDOW")) this.refuse(this.peek(), "WINDOW", "window functions are not supported");
    if (this.isWord("QUALIFY")) this.refuse(this.peek(), "QUALIFY", "QUALIFY is not supported");
    let orderBy: OrderItem[] = [];
    if (this.acceptWord("ORDER")) {
      this.expectWord("BY");
      orderBy = this.orderList();
    }
    let limit: number | null = null;
    let offset = 0;
    if (this.acceptWord("LIMIT")) {
      if (this.acceptWord("ALL")) {
        limit = null;
      } else {
        const first = this.count("LIMIT");
        if (this.acceptOp(",")) {
          offset = first;
          limit = this.count("LIMIT");
        } else {
          limit = first;
        }
        if (this.isWord("BY")) this.refuse(this.peek(), "LIMIT BY", "LIMIT … BY is not supported");
        if (this.isWord("WITH")) this.refuse(this.peek(), "LIMIT WITH TIES", "LIMIT … WITH TIES is not supported");
      }
    }
    if (this.acceptWord("OFFSET")) {
      offset = this.count("OFFSET");
      if (!this.acceptWord("ROWS")) this.acceptWord("ROW");
    }
    if (this.isWord("FETCH")) this.refuse(this.peek(), "FETCH", "FETCH is not supported; use LIMIT");
    if (this.isWord("SETTINGS")) this.refuse(this.peek(), "SETTINGS", "SETTINGS is not supported");
    for (const word of ["UNION", "INTERSECT", "EXCEPT"]) {
      if (this.isWord(word)) this.refuse(this.peek(), word, `${word} is not supported: a query reads one dataset`);
    }
    let format: "JSON" | null = null;
    if (this.acceptWord("FORMAT")) {
      const name = this.next();
      if (name.kind !== "ident" && name.kind !== "quoted-ident") this.unexpected(name, "a format name (JSON)");
      if (name.value.toUpperCase() !== "JSON") this.refuse(name, `FORMAT ${name.value}`, `FORMAT ${name.value} is not supported; the answer is always FORMAT JSON`);
      format = "JSON";
    }
    this.acceptOp(";");
    const end = this.peek();
    if (end.kind !== "eof") {
      if (end.kind === "ident" && JOIN_WORDS.has(end.value.toUpperCase())) this.refuse(end, "JOIN", "JOIN is not supported: a query reads one dataset");
      if (end.kind === "ident" && RESERVED.has(end.value.toUpperCase())) {
        this.refuse(end, end.value.toUpperCase(), `${end.value.toUpperCase()} is not supported here; clauses go in the order SELECT, FROM, WHERE, GROUP BY, HAVING, ORDER BY, LIMIT, FORMAT`);
      }
      this.unexpected(end, "the end of the query");
    }
    return { distinct, items, dataset, where, groupBy, having, orderBy, limit, offset, format };
  }

  private selectList(): SelectItem[] {
    const items: SelectItem[] = [];
    do {
      const position = this.peek().position;
      const expr = this.expression();
      let alias: string | null = null;
      if (this.acceptWord("AS")) {
        alias = this.identifier("an alias after AS");
      } else if (this.peek().kind === "quoted-ident" || (this.peek().kind === "ident" && !RESERVED.has(this.peek().value.toUpperCase()))) {
        alias = this.next().value;
      }
      if (alias !== null && expr.kind === "star") this.refuse(this.tokens[this.index - 1]!, "alias of *", "* cannot have an alias");
      items.push({ expr, alias, position });
    } while (this.acceptOp(","));
    return items;
  }

  private fromClause(): string {
    const token = this.peek();
    if (token.kind === "op" && token.value === "(") this.refuse(token, "subquery", "subqueries are not supported: FROM names one dataset");
    const dataset = this.identifier("a dataset name after FROM");
    if (this.peek().kind === "op" && this.peek().value === "(") this.refuse(token, "table function", `table functions such as ${dataset}(…) are not supported: FROM names one dataset`);
    if (this.peek().kind === "op" && this.peek().value === ".") this.refuse(this.peek(), "qualified dataset name", "FROM takes a bare dataset name, not database.table");
    if (this.peek().kind === "op" && this.peek().value === ",") this.refuse(this.peek(), "JOIN", "JOIN is not supported: a query reads one dataset");
    const after = this.peek();
    if (after.kind === "ident") {
      const word = after.value.toUpperCase();
      if (word === "ARRAY") this.refuse(after, "ARRAY JOIN", "ARRAY JOIN is not supported");
      if (JOIN_WORDS.has(word)) this.refuse(after, "JOIN", "JOIN is not supported: a query reads one dataset");
      if (word === "FINAL" || word === "SAMPLE" || word === "PREWHERE") this.refuse(after, word, `${word} is not supported`);
      if (word === "AS" || !RESERVED.has(word)) this.refuse(after, "table alias", "table aliases are not supported: a query reads one dataset, name its columns directly");
    }
    if (after.kind === "quoted-ident") this.refuse(after, "table alias", "table aliases are not supported: a query reads one dataset, name its columns directly");
    return dataset;
  }

  private orderList(): OrderItem[] {
    const items: OrderItem[] = [];
    do {
      const expr = this.expression();
      let descending = false;
      if (this.acceptWord("DESC") || this.acceptWord("DESCENDING")) descending = true;
      else if (!this.acceptWord("ASC")) this.acceptWord("ASCENDING");
      if (this.isWord("NULLS")) this.refuse(this.peek(), "NULLS FIRST/LAST", "NULLS FIRST/LAST is not supported (the columns hold no NULLs)");
      if (this.isWord("COLLATE")) this.refuse(this.peek(), "COLLATE", "COLLATE is not supported");
      if (this.isWord("WITH")) this.refuse(this.peek(), "WITH FILL", "ORDER BY … WITH FILL is not supported");
      items.push({ expr, descending });
    } while (this.acceptOp(","));
    return items;
  }

  private expressionList(): Expr[] {
    const list: Expr[] = [];
    do list.push(this.expression());
    while (this.acceptOp(","));
    return list;
  }

  // ---- expressions, lowest precedence first ----

  expression(): Expr {
    if (++this.nesting > MAX_EXPRESSION_DEPTH) this.tooDeep(this.peek());
    const expr = this.or();
    this.nesting--;
    const token = this.peek();
    if (token.kind === "op" && token.value === "?") this.refuse(token, "operator ?:", "the ?: operator is not supported; use if(cond, then, else)");
    if (token.kind === "op" && token.value === "||") this.refuse(token, "operator ||", "the || operator is not supported");
    return expr;
  }

  private or(): Expr {
    let left = this.and();
    while (this.isWord("OR")) {
      const token = this.next();
      left = this.call("or", [left, this.and()], token, "OR");
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isWord("AND")) {
      const token = this.next();
      left = this.call("and", [left, this.not()], token, "AND");
    }
    return left;
  }

  private not(): Expr {
    if (this.isWord("NOT")) {
      const token = this.next();
      if (++this.nesting > MAX_EXPRESSION_DEPTH) this.tooDeep(token);
      const operand = this.not();
      this.nesting--;
      return this.call("not", [operand], token, "NOT");
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.additive();
    const token = this.peek();
    if (token.kind === "op" && COMPARISONS[token.value]) {
      this.next();
      return this.call(COMPARISONS[token.value]!, [left, this.additive()], token, token.value);
    }
    if (token.kind !== "ident") return left;
    const word = token.value.toUpperCase();
    if (word === "IS") this.refuse(token, "IS NULL", "IS [NOT] NULL is not supported (the columns hold no NULLs)");
    const negated = word === "NOT" && ["LIKE", "ILIKE", "IN", "BETWEEN"].includes(this.peek(1).value.toUpperCase()) && this.peek(1).kind === "ident";
    const operator = negated ? this.peek(1).value.toUpperCase() : word;
    if (!["LIKE", "ILIKE", "IN", "BETWEEN"].includes(operator)) return left;
    this.next();
    if (negated) this.next();
    const written = negated ? `NOT ${operator}` : operator;
    if (operator === "LIKE" || operator === "ILIKE") {
      const name = { LIKE: "like", ILIKE: "ilike" }[operator] ?? "like";
      return this.call(negated ? `not${name === "like" ? "Like" : "ILike"}` : name, [left, this.additive()], token, written);
    }
    if (operator === "IN") return this.call(negated ? "notIn" : "in", [left, ...this.inList()], token, written);
    const low = this.additive();
    this.expectWord("AND");
    const high = this.additive();
    // ClickHouse rewrites BETWEEN the same way.
    if (negated) return this.call("or", [this.call("less", [left, low], token, "<"), this.call("greater", [left, high], token, ">")], token, written);
    return this.call("and", [this.call("greaterOrEquals", [left, low], token, ">="), this.call("lessOrEquals", [left, high], token, "<=")], token, written);
  }

  private inList(): Expr[] {
    const open = this.peek();
    if (!(open.kind === "op" && open.value === "(")) {
      this.refuse(open, "IN without a list", "IN takes a parenthesised list of values: x IN ('a', 'b')");
    }
    this.next();
    if (this.isWord("SELECT") || this.isWord("WITH")) this.refuse(this.peek(), "subquery", "subqueries are not supported; IN takes a list of values");
    const list = this.expressionList();
    this.expectOp(")");
    return list;
  }

  private additive(): Expr {
    let left = this.multiplicative();
    for (;;) {
      const token = this.peek();
      if (token.kind !== "op" || (token.value !== "+" && token.value !== "-")) return left;
      this.next();
      left = this.call(token.value === "+" ? "plus" : "minus", [left, this.multiplicative()], token, token.value);
    }
  }

  private multiplicative(): Expr {
    let left = this.unary();
    for (;;) {
      const token = this.peek();
      if (token.kind !== "op" || !["*", "/", "%"].includes(token.value)) return left;
      this.next();
      const name = token.value === "*" ? "multiply" : token.value === "/" ? "divide" : "modulo";
      left = this.call(name, [left, this.unary()], token, token.value);
    }
  }

  private unary(): Expr {
    const token = this.peek();
    if (token.kind === "op" && token.value === "-") {
      this.next();
      const operand = this.peek();
      // A minus sign on a number is part of the literal, as in ClickHouse.
      if (operand.kind === "number") {
        const literal = this.numberLiteral(this.next());
        return { ...literal, value: -(literal.value as number), position: token.position };
      }
      if (++this.nesting > MAX_EXPRESSION_DEPTH) this.tooDeep(token);
      const negated = this.unary();
      this.nesting--;
      return this.call("negate", [negated], token, "-");
    }
    return this.postfix(this.primary());
  }

  private postfix(expr: Expr): Expr {
    const token = this.peek();
    if (token.kind === "op" && token.value === "[") this.refuse(token, "array subscript", "arrays and subscripts are not supported");
    if (token.kind === "op" && token.value === "." ) this.refuse(token, "qualified name", "qualified names (a.b) are not supported: name the column alone");
    if (token.kind === "op" && token.value === ":") this.refuse(token, "operator ::", "casts with :: are not supported; use toFloat64, toUInt32, toString");
    return expr;
  }

  private primary(): Expr {
    const token = this.next();
    switch (token.kind) {
      case "number":
        return this.numberLiteral(token);
      case "string":
        return { kind: "literal", value: token.value, literalType: "string", position: token.position };
      case "quoted-ident":
        return { kind: "column", name: token.value, position: token.position };
      case "op":
        if (token.value === "(") {
          if (this.isWord("SELECT") || this.isWord("WITH")) this.refuse(this.peek(), "subquery", "subqueries are not supported");
          const inner = this.expression();
          if (this.peek().kind === "op" && this.peek().value === ",") this.refuse(this.peek(), "tuple", "tuples are not supported");
          this.expectOp(")");
          return inner;
        }
        if (token.value === "*") return { kind: "star", position: token.position };
        if (token.value === "[") this.refuse(token, "array literal", "arrays are not supported");
        if (token.value === "{") this.refuse(token, "query parameter", "query parameters ({name:Type}) are not supported");
        if (token.value === "?") this.refuse(token, "query parameter", "query parameters (?) are not supported");
        return this.unexpected(token, "an expression");
      case "eof":
        return this.unexpected(token, "an expression");
      case "ident":
        return this.identifierExpression(token);
    }
  }

  private identifierExpression(token: Token): Expr {
    const word = token.value.toUpperCase();
    const followedByParen = this.peek().kind === "op" && this.peek().value === "(";
    if (word === "TRUE" || word === "FALSE") return { kind: "literal", value: word === "TRUE", literalType: "bool", position: token.position };
    if (word === "NULL") this.refuse(token, "NULL", "NULL is not supported (the columns hold no NULLs)");
    if (word === "INTERVAL") return this.interval(token);
    if (word === "CASE") this.refuse(token, "CASE", "CASE is not supported; use if(cond, then, else)");
    if (word === "CAST" && followedByParen) this.refuse(token, "CAST", "CAST is not supported; use toFloat64, toUInt32, toString");
    if (word === "EXTRACT" && followedByParen) this.refuse(token, "EXTRACT", "EXTRACT is not supported");
    if (word === "EXISTS") this.refuse(token, "EXISTS", "EXISTS (subqueries) is not supported");
    if (word === "SELECT") this.refuse(token, "subquery", "subqueries are not supported");
    if (word === "DATE" || word === "TIMESTAMP") {
      if (this.peek().kind === "string") this.refuse(token, `${word} literal`, `${word} '…' literals are not supported; use toDateTime('YYYY-MM-DD hh:mm:ss')`);
    }
    if (followedByParen) return this.functionCall(token);
    if (RESERVED.has(word)) this.unexpected(token, "an expression");
    return { kind: "column", name: token.value, position: token.position };
  }

  private functionCall(nameToken: Token): CallExpr {
    this.expectOp("(");
    let distinct = this.acceptWord("DISTINCT");
    let args = this.callArguments();
    let params: Expr[] | null = null;
    if (this.peek().kind === "op" && this.peek().value === "(") {
      // name(params)(args): a parametric aggregate such as quantileExactWeighted(0.95)(x, w).
      if (distinct) this.refuse(nameToken, "DISTINCT in parameters", "DISTINCT goes in the argument list: name(params)(DISTINCT x)");
      this.next();
      params = args;
      distinct = this.acceptWord("DISTINCT");
      args = this.callArguments();
    }
    const parenFollows = this.peek(1).kind === "op" && this.peek(1).value === "(";
    if (this.isWord("OVER") && parenFollows) this.refuse(this.peek(), "window function (OVER)", "window functions (OVER …) are not supported");
    if (this.isWord("FILTER") && parenFollows) this.refuse(this.peek(), "FILTER", "aggregate FILTER clauses are not supported; use countIf/sumIf");
    return this.withDepth({ kind: "call", name: nameToken.value, params, args, distinct, position: nameToken.position }, [...(params ?? []), ...args], nameToken);
  }

  /** The arguments after "(", through the closing ")". */
  private callArguments(): Expr[] {
    if (this.acceptOp(")")) return [];
    const args = this.expressionList();
    const close = this.peek();
    if (close.kind === "ident" && close.value.toUpperCase() === "ORDER") this.refuse(close, "ORDER BY in an aggregate", "ORDER BY inside an aggregate call is not supported");
    this.expectOp(")");
    return args;
  }

  private interval(keyword: Token): Expr {
    let token = this.next();
    let sign = 1;
    if (token.kind === "op" && token.value === "-") {
      sign = -1;
      token = this.next();
    }
    let amountText: string;
    let unitToken: Token | null = null;
    let unitText: string | undefined;
    if (token.kind === "number") {
      amountText = token.value;
    } else if (token.kind === "string") {
      // INTERVAL '5' MINUTE, or the whole interval in the string: INTERVAL '5 MINUTE'.
      const parts = words(token.value);
      amountText = parts[0] ?? "";
      if (parts.length === 2) unitText = parts[1]!;
      else if (parts.length > 2) this.refuse(token, `INTERVAL ${token.text}`, `malformed INTERVAL ${token.text}; write INTERVAL '5' MINUTE`);
    } else {
      return this.refuse(token, token.kind === "eof" ? "INTERVAL" : `INTERVAL ${token.text}`, "INTERVAL takes a whole number and a unit: INTERVAL '5' MINUTE");
    }
    if (amountText.startsWith("-")) {
      sign = -sign;
      amountText = amountText.slice(1);
    }
    if (!isWholeNumber(amountText) || Number(amountText) > MAX_INTEGER_LITERAL) {
      this.refuse(token, `INTERVAL ${token.text}`, `INTERVAL takes a whole number, not ${token.text}: INTERVAL '5' MINUTE`);
    }
    if (unitText === undefined) {
      unitToken = this.next();
      if (unitToken.kind !== "ident") this.refuse(unitToken, unitToken.kind === "eof" ? "INTERVAL" : `INTERVAL unit ${unitToken.text}`, `INTERVAL needs a unit: one of ${INTERVAL_UNITS.join(", ")}`);
      unitText = unitToken.value;
    }
    const unit = unitText.toUpperCase() as IntervalUnit;
    if (!INTERVAL_UNITS.includes(unit)) {
      this.refuse(unitToken ?? token, `INTERVAL unit ${unitText}`, `unknown INTERVAL unit ${unitText}; use one of ${INTERVAL_UNITS.join(", ")}`);
    }
    return { kind: "interval", amount: sign * Number(amountText), unit, position: keyword.position };
  }

  private numberLiteral(token: Token): Expr & { kind: "literal" } {
    const isInteger = isWholeNumber(token.value);
    const value = Number(token.value);
    if (!Number.isFinite(value)) this.refuse(token, token.text, `number ${token.text} is out of range`);
    if (isInteger && value > MAX_INTEGER_LITERAL) this.refuse(token, token.text, `integer ${token.text} is too large (at most ${MAX_INTEGER_LITERAL})`);
    return { kind: "literal", value, literalType: isInteger ? "integer" : "float", position: token.position };
  }

  /** A count in LIMIT or OFFSET: a whole number literal. */
  private count(clause: string): number {
    const token = this.next();
    if (token.kind !== "number" || !isWholeNumber(token.value) || Number(token.value) > MAX_INTEGER_LITERAL) {
      this.refuse(token, `${clause} ${token.text || "(nothing)"}`, `${clause} takes a whole number`);
    }
    return Number(token.value);
  }

  // ---- token helpers ----

  private call(name: string, args: Expr[], token: Token, operator: string): CallExpr {
    return this.withDepth({ kind: "call", name, operator, params: null, args, distinct: false, position: token.position }, args, token);
  }

  private withDepth(node: CallExpr, children: Expr[], token: Token): CallExpr {
    let depth = 1;
    for (const child of children) depth = Math.max(depth, 1 + (this.depths.get(child) ?? 1));
    if (depth > MAX_EXPRESSION_DEPTH) this.tooDeep(token);
    this.depths.set(node, depth);
    return node;
  }

  private tooDeep(token: Token): never {
    throw new SqlError("expression depth", `the expression is nested more than ${MAX_EXPRESSION_DEPTH} levels deep`, token.position);
  }

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.index + ahead, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const token = this.peek();
    if (this.index < this.tokens.length - 1) this.index++;
    return token;
  }

  private isWord(word: string): boolean {
    const token = this.peek();
    return token.kind === "ident" && token.value.toUpperCase() === word;
  }

  private acceptWord(word: string): boolean {
    if (!this.isWord(word)) return false;
    this.next();
    return true;
  }

  private expectWord(word: string): void {
    if (!this.acceptWord(word)) this.unexpected(this.peek(), word);
  }

  private acceptOp(op: string): boolean {
    const token = this.peek();
    if (token.kind !== "op" || token.value !== op) return false;
    this.next();
    return true;
  }

  private expectOp(op: string): void {
    if (!this.acceptOp(op)) this.unexpected(this.peek(), `"${op}"`);
  }

  private identifier(what: string): string {
    const token = this.next();
    if (token.kind === "quoted-ident") return token.value;
    if (token.kind === "ident" && !RESERVED.has(token.value.toUpperCase())) return token.value;
    return this.unexpected(token, what);
  }

  private unexpected(token: Token, expected: string): never {
    const found = token.kind === "eof" ? "end of query" : token.text;
    const where = token.kind === "eof" ? "at the end of the query" : `at offset ${token.position}`;
    throw new SqlError(found, `unexpected ${token.kind === "eof" ? "end of query" : JSON.stringify(token.text)} ${where}; expected ${expected}`, token.position);
  }

  private refuse(token: Token, construct: string, message: string): never {
    throw new SqlError(construct, message, token.position);
  }
}

function isWholeNumber(text: string): boolean {
  if (text === "") return false;
  for (const c of text) if (c < "0" || c > "9") return false;
  return true;
}

/** The whitespace-separated words of a string. */
function words(text: string): string[] {
  const out: string[] = [];
  let current = "";
  for (const c of text) {
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (current) out.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  if (current) out.push(current);
  return out;
}
