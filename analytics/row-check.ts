// Checks a row before a store keeps it, against Analytics Engine's limits on a data point, so the
// local store holds only what Analytics Engine itself would accept.
import { MAX_BLOBS, MAX_DOUBLES, MAX_INDEX_BYTES, type AnalyticsRow } from "./types.ts";

/** Analytics Engine's limit on the total size of a data point's blobs. */
export const MAX_BLOB_BYTES = 16 * 1024;

const utf8 = new TextEncoder();

/** Why the row cannot be stored, or null when it can. */
export function rowProblem(row: AnalyticsRow): string | null {
  if (typeof row !== "object" || row === null) return "not an object";
  if (typeof row.dataset !== "string" || row.dataset === "") return "dataset must be a non-empty string";
  if (typeof row.timestampMs !== "number" || !Number.isFinite(row.timestampMs)) return "timestampMs must be a finite number";
  if (!Number.isInteger(row.sampleInterval) || row.sampleInterval < 1) return "sampleInterval must be a whole number ≥ 1";
  if (typeof row.index1 !== "string") return "index1 must be a string";
  if (utf8.encode(row.index1).length > MAX_INDEX_BYTES) return `index1 is longer than ${MAX_INDEX_BYTES} bytes`;
  if (!Array.isArray(row.blobs) || row.blobs.length > MAX_BLOBS) return `blobs must be an array of at most ${MAX_BLOBS} strings`;
  let blobBytes = 0;
  for (const blob of row.blobs) {
    if (typeof blob !== "string") return "every blob must be a string";
    blobBytes += utf8.encode(blob).length;
  }
  if (blobBytes > MAX_BLOB_BYTES) return `blobs total ${blobBytes} bytes; at most ${MAX_BLOB_BYTES} are allowed`;
  if (!Array.isArray(row.doubles) || row.doubles.length > MAX_DOUBLES) return `doubles must be an array of at most ${MAX_DOUBLES} numbers`;
  for (const double of row.doubles) {
    if (typeof double !== "number" || !Number.isFinite(double)) return "every double must be a finite number";
  }
  return null;
}
