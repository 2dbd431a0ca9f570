// Everything outside the supported SQL is refused with a SqlError naming the construct; random
// input never makes the engine throw anything else.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_EXPRESSION_DEPTH, parseQuery, runQuery, SqlError } from "../../analytics/sql/index.ts";
import { knownRows, NOW_MS } from "./analytics-fixtures.ts";

function refusal(sql: string): SqlError {
  try {
    runQuery(sql, knownRows(), { nowMs: NOW_MS });
  } catch (error) {
    if (error instanceof SqlError) return error;
    throw error;
  }
  throw new Error(`expected ${sql} to be refused`);
}

describe("refusals name the construct", () => {
  const cases: [sql: string, construct: string][] = [
    ["SELECT blob1 FROM mesh JOIN other ON blob1 = blob1", "JOIN"],
    ["SELECT blob1 FROM mesh LEFT JOIN other USING (blob1)", "JOIN"],
    ["SELECT blob1 FROM mesh, other", "JOIN"],
    ["SELECT blob1 FROM mesh ARRAY JOIN blob1", "ARRAY JOIN"],
    ["SELECT * FROM (SELECT blob1 FROM mesh)", "subquery"],
    ["SELECT blob1 FROM mesh WHERE blob1 IN (SELECT blob1 FROM other)", "subquery"],
    ["SELECT (SELECT 1)", "subquery"],
    ["SELECT count() OVER (PARTITION BY blob1) FROM mesh", "window function (OVER)"],
    ["SELECT toDate(timestamp) FROM mesh", "function toDate"],
    ["SELECT uniq(blob1) FROM mesh", "function uniq"],
    ["SELECT blob21 FROM mesh", "column blob21"],
    ["SELECT Blob1 FROM mesh", "column Blob1"],
    ["SELECT nonsense FROM mesh", "column nonsense"],
    ["SELECT blob1", "column blob1"],
    ["WITH 1 AS x SELECT x", "WITH"],
    ["SELECT 1 UNION ALL SELECT 2", "UNION"],
    ["SELECT blob1 FROM mesh EXCEPT SELECT blob1 FROM other", "EXCEPT"],
    ["INSERT INTO mesh VALUES (1)", "statement INSERT"],
    ["SHOW TABLES", "statement SHOW"],
    ["DROP TABLE mesh", "statement DROP"],
    ["SELECT 1 FORMAT JSONEachRow", "FORMAT JSONEachRow"],
    ["SELECT 1 FORMAT TabSeparated", "FORMAT TabSeparated"],
    ["SELECT CASE WHEN double1 > 1 THEN 1 ELSE 0 END FROM mesh", "CASE"],
    ["SELECT NULL", "NULL"],
    ["SELECT blob1 FROM mesh WHERE blob1 IS NULL", "IS NULL"],
    ["SELECT CAST(double1 AS String) FROM mesh", "CAST"],
    ["SELECT double1::String FROM mesh", "operator ::"],
    ["SELECT blob1 || 'x' FROM mesh", "operator ||"],
    ["SELECT double1 > 1 ? 1 : 0 FROM mesh", "operator ?:"],
    ["SELECT [1, 2]", "array literal"],
    ["SELECT (1, 2)", "tuple"],
    ["SELECT sum(count()) FROM mesh", "aggregate function count inside another aggregate function"],
    ["SELECT count() FROM mesh WHERE count() > 1", "aggregate function count in WHERE"],
    ["SELECT count() FROM mesh GROUP BY sum(double1)", "aggregate function sum in GROUP BY"],
    ["SELECT blob1, count() FROM mesh", "column blob1"],
    ["SELECT blob2, count() FROM mesh GROUP BY blob1", "column blob2"],
    ["SELECT blob1 FROM mesh HAVING blob1 = 'a'", "HAVING"],
    ["SELECT blob1 FROM mesh WHERE blob1", "WHERE"],
    ["SELECT count() FROM mesh LIMIT 1 BY blob1", "LIMIT BY"],
    ["SELECT blob1 FROM mesh LIMIT -1", "LIMIT -"],
    ["SELECT blob1 FROM mesh SETTINGS max_threads = 1", "SETTINGS"],
    ["SELECT blob1 FROM mesh FINAL", "FINAL"],
    ["SELECT blob1 FROM mesh SAMPLE 0.1", "SAMPLE"],
    ["SELECT blob1 FROM mesh PREWHERE double1 > 1", "PREWHERE"],
    ["SELECT blob1 FROM mesh AS m", "table alias"],
    ["SELECT blob1 FROM db.mesh", "qualified dataset name"],
    ["SELECT mesh.blob1 FROM mesh", "qualified name"],
    ["SELECT * FROM numbers(10)", "table function"],
    ["SELECT blob1 FROM mesh ORDER BY blob1 NULLS FIRST", "NULLS FIRST/LAST"],
    ["SELECT blob1 FROM mesh ORDER BY blob1 WITH FILL", "WITH FILL"],
    ["SELECT blob1 FROM mesh GROUP BY blob1 WITH TOTALS", "WITH TOTALS"],
    ["SELECT toStartOfInterval(timestamp, INTERVAL '5' FORTNIGHT) FROM mesh", "INTERVAL unit FORTNIGHT"],
    ["SELECT now() - INTERVAL '1.5' HOUR", "INTERVAL '1.5'"],
    ["SELECT now() - INTERVAL 5", "INTERVAL"],
    ["SELECT toStartOfInterval(timestamp, INTERVAL 5 MINUTE, 'Europe/Paris') FROM mesh", "timezone 'Europe/Paris'"],
    ["SELECT toStartOfInterval(timestamp, 300) FROM mesh", "function toStartOfInterval"],
    ["SELECT toStartOfInterval(timestamp, INTERVAL 0 MINUTE) FROM mesh", "function toStartOfInterval"],
    ["SELECT intDiv(double1, 0) FROM mesh", "function intDiv"],
    ["SELECT 7 % 0", "operator %"],
    ["SELECT blob1 + 1 FROM mesh", "operator +"],
    ["SELECT blob1 = 1 FROM mesh", "operator ="],
    ["SELECT timestamp > 'yesterday' FROM mesh", "operator >"],
    ["SELECT sum(blob1) FROM mesh", "function sum"],
    ["SELECT quantileExactWeighted(1.5)(double1, _sample_interval) FROM mesh", "function quantileExactWeighted"],
    ["SELECT quantileExactWeighted(0.5)(blob1, _sample_interval) FROM mesh", "function quantileExactWeighted"],
    ["SELECT quantileExactWeighted(double1)(double1, _sample_interval) FROM mesh", "function quantileExactWeighted"],
    ["SELECT intDiv(double1) FROM mesh", "function intDiv"],
    ["SELECT round(double1)(2) FROM mesh", "function round"],
    ["SELECT if(1, 'a', 2)", "function if"],
    ["SELECT count(*, blob1) FROM mesh", "*"],
    ["SELECT blob1 AS x, blob2 AS x FROM mesh", "alias x"],
    ["SELECT double1 + 1 AS a, a AS b, b + 1 AS a FROM mesh", "alias a"],
    ["SELECT x + 1 AS x FROM mesh", "alias x"],
    ["SELECT blob1, blob1 FROM mesh", "column name blob1"],
    ["SELECT blob1 FROM mesh ORDER BY 3", "ORDER BY 3"],
    ["SELECT 1 +", "end of query"],
    ["SELECT blob1 FROM", "end of query"],
    ["SELECT blob1 FROM mesh WHERE", "end of query"],
    ["SELECT blob1 FROM mesh GROUP blob1", "blob1"],
    ["SELECT 'abc", "string"],
    ["SELECT `abc", "quoted identifier"],
    ["SELECT 1 /* open", "comment"],
    ["SELECT 12abc", "12abc"],
    ["SELECT $1", "$"],
    ["SELECT 99999999999999999999", "99999999999999999999"],
    ["", "end of query"],
    ["SELECT " + "(".repeat(MAX_EXPRESSION_DEPTH + 10) + "1" + ")".repeat(MAX_EXPRESSION_DEPTH + 10), "expression depth"],
    ["SELECT " + Array.from({ length: 2 * MAX_EXPRESSION_DEPTH }, () => "1").join(" + "), "expression depth"],
    ["SELECT " + "NOT ".repeat(2 * MAX_EXPRESSION_DEPTH) + "1", "expression depth"],
    ["SELECT '" + "x".repeat(200_000) + "'", "query length"],
  ];

  for (const [sql, construct] of cases) {
    it(`${sql.length > 80 ? `${sql.slice(0, 60)}… (${sql.length} chars)` : sql} → ${construct}`, () => {
      const error = refusal(sql);
      expect(error.construct).toBe(construct);
      expect(error.message.length).toBeGreaterThan(10);
      expect(error.position).toBeGreaterThanOrEqual(0);
      expect(error.position).toBeLessThanOrEqual(sql.length);
    });
  }

  it("points at the offending piece", () => {
    const sql = "SELECT blob1 FROM mesh JOIN other ON 1";
    expect(refusal(sql).position).toBe(sql.indexOf("JOIN"));
    expect(refusal("SELECT count(), nope(1) FROM mesh").position).toBe("SELECT count(), ".length);
  });

  it("suggests the right case for a column", () => {
    expect(refusal("SELECT Blob1 FROM mesh").message).toContain("did you mean blob1");
  });

  it("refuses at parse time, before any row is read", () => {
    expect(() => parseQuery("SELECT blob1 FROM mesh JOIN other ON 1")).toThrow(SqlError);
    expect(() => parseQuery("SELECT toDateTime('not a date') FROM mesh")).toThrow(SqlError);
  });
});

describe("random input", () => {
  const onlySqlErrors = (sql: string) => {
    try {
      runQuery(sql, knownRows(), { nowMs: NOW_MS });
    } catch (error) {
      if (!(error instanceof SqlError)) throw error;
      expect(typeof error.construct).toBe("string");
      expect(error.position).toBeGreaterThanOrEqual(0);
    }
  };

  it("never throws anything but SqlError on arbitrary strings", () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), onlySqlErrors), { numRuns: 2000 });
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 100 }), onlySqlErrors), { numRuns: 500 });
  });

  it("never throws anything but SqlError on token soup that reaches deep into the parser", () => {
    const vocabulary = [
      "SELECT", "FROM", "mesh", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET", "FORMAT", "JSON", "AS", "AND", "OR", "NOT",
      "IN", "LIKE", "ILIKE", "BETWEEN", "INTERVAL", "'5'", "MINUTE", "HOUR", "DESC", "ASC", "DISTINCT", "JOIN", "UNION", "NULL", "CASE",
      "count", "sum", "avg", "min", "max", "countIf", "sumIf", "quantileExactWeighted", "intDiv", "toStartOfInterval", "now", "round",
      "toUInt32", "toDateTime", "if", "blob1", "blob2", "double1", "double2", "timestamp", "_sample_interval", "index1", "x",
      "(", ")", ",", "*", "+", "-", "/", "%", "=", "!=", "<", ">", "<=", ">=", "0", "1", "0.5", "100", "'reviews'", "'re%'",
      "'2024-05-01 11:00:00'", ";", ".", "`q`", '"d"', "--c\n", "[", "?", "::", "||",
    ];
    const soup = fc.array(fc.constantFrom(...vocabulary), { maxLength: 30 }).map((words) => words.join(" "));
    fc.assert(fc.property(soup, onlySqlErrors), { numRuns: 3000 });
    const valid = fc
      .tuple(
        fc.array(fc.constantFrom("blob1", "double1 + 1", "count()", "sum(_sample_interval)", "intDiv(double1, 7)", "toStartOfInterval(timestamp, INTERVAL 1 MINUTE)", "quantileExactWeighted(0.9)(double1, _sample_interval)"), { minLength: 1, maxLength: 4 }),
        fc.constantFrom("", " WHERE double1 > 10", " WHERE timestamp > now() - INTERVAL '3' MINUTE", " WHERE blob1 IN ('reviews', 'ratings')"),
        fc.constantFrom("", " GROUP BY blob1", " GROUP BY 1"),
        fc.constantFrom("", " ORDER BY 1 DESC", " LIMIT 2"),
      )
      .map(([items, where, group, tail]) => `SELECT ${items.join(", ")} FROM mesh${where}${group}${tail}`);
    fc.assert(fc.property(valid, onlySqlErrors), { numRuns: 1000 });
  });
});
