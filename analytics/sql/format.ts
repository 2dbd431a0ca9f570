// Values as the SQL API's FORMAT JSON writes them: ClickHouse quotes 64-bit integers (a JSON
// number cannot hold them exactly), writes DateTime as "YYYY-MM-DD hh:mm:ss", and NaN or ±inf
// as null.
import { formatDateTime } from "./datetime.ts";
import { isInterval, type SqlType, type Value } from "./value-types.ts";

export function formatValue(value: Value, type: SqlType): string | number | null {
  if (type === "String") return value as string;
  if (type === "DateTime") return formatDateTime(value as number);
  if (isInterval(type)) return typeof value === "object" ? value.amount : (value as number);
  const n = value as number;
  if (!Number.isFinite(n)) return null;
  if (type === "UInt64" || type === "Int64") return String(Math.trunc(n));
  return n;
}
