// The columns of an Analytics Engine dataset, their ClickHouse types, and how each is read from a
// stored row. Missing blobs read as "" and missing doubles as 0.
import type { AnalyticsRow } from "../types.ts";
import { MAX_BLOBS, MAX_DOUBLES } from "../types.ts";
import type { SqlType, Value } from "./value-types.ts";

export interface Column {
  type: SqlType;
  read: (row: AnalyticsRow) => Value;
}

const blobNames = Array.from({ length: MAX_BLOBS }, (_, i) => `blob${i + 1}`);
const doubleNames = Array.from({ length: MAX_DOUBLES }, (_, i) => `double${i + 1}`);

/** Every column, in the order SELECT * returns them. */
export const COLUMN_NAMES: readonly string[] = ["dataset", "timestamp", "_sample_interval", "index1", ...blobNames, ...doubleNames];

const COLUMNS = new Map<string, Column>([
  ["dataset", { type: "String", read: (row) => row.dataset }],
  // Analytics Engine's timestamp is a DateTime: whole seconds.
  ["timestamp", { type: "DateTime", read: (row) => Math.floor(row.timestampMs / 1000) }],
  ["_sample_interval", { type: "UInt32", read: (row) => row.sampleInterval }],
  ["index1", { type: "String", read: (row) => row.index1 ?? "" }],
  ...blobNames.map((name, i): [string, Column] => [name, { type: "String", read: (row) => row.blobs[i] ?? "" }]),
  ...doubleNames.map((name, i): [string, Column] => [name, { type: "Float64", read: (row) => row.doubles[i] ?? 0 }]),
]);

export function column(name: string): Column | undefined {
  return COLUMNS.get(name);
}

export const COLUMNS_DESCRIPTION = `timestamp, _sample_interval, index1, blob1..blob${MAX_BLOBS}, double1..double${MAX_DOUBLES}, dataset`;
