// The mesh's request data point: which Analytics Engine column holds which field. Defined once
// here; the sidecar writes with `toDataPoint` and every query (golden metrics, docs, CLI) names
// columns through `COLUMN`, so the two cannot drift apart. Pure: imports only the shared types and
// caller names.
import { MAX_BLOBS, MAX_DOUBLES, MAX_INDEX_BYTES, type DataPoint } from "./types.ts";

/** The dataset every sidecar writes to (the FROM of every query), unless configured otherwise. */
export const REQUESTS_DATASET = "edgemesh_requests";

/**
 * How a request ended, from the caller's point of view.
 * - ok: the upstream answered below 500 on the first try; retried-ok: after one or more retries.
 * - failed: the final answer was a 5xx from the upstream, or no answer (connect failure, reset).
 * - timeout: the sidecar answered 504 (route or per-try deadline).
 * - shed: the circuit breaker refused the request (503).
 * - no-route / no-endpoint / no-snapshot: the sidecar had nowhere to send it.
 * - fault-injected: the final answer came from fault injection.
 * - error: the sidecar itself failed (500).
 * - unauthenticated: an identity claim that did not verify was refused (401).
 * - denied: access policy refused the caller (403); rate-limited: a rate limit did (429).
 */
export const OUTCOMES = [
  "ok", "retried-ok", "failed", "timeout", "shed", "no-route", "no-endpoint", "no-snapshot", "fault-injected", "error", "denied", "rate-limited", "unauthenticated",
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Outcomes that count as successes in golden metrics (as Linkerd: a 4xx is the caller's problem). */
export const SUCCESS_OUTCOMES: readonly Outcome[] = ["ok", "retried-ok"];

/** The caller recorded for requests without a verified identity (defined with the other caller names). */
export { EXTERNAL_CALLER } from "../auth/caller-names.ts";

/** blob1..blobN in this order. */
export const BLOB_FIELDS = ["mesh", "source", "destination", "route", "subset", "endpoint", "outcome", "colo", "method", "reason", "rpcProtocol", "rpcService", "rpcMethod"] as const;
/** double1..doubleN in this order. */
export const DOUBLE_FIELDS = ["sampleWeight", "status", "latencyMs", "attempts", "requestBytes", "responseBytes", "hedged", "grpcStatus"] as const;

export type BlobField = (typeof BLOB_FIELDS)[number];
export type DoubleField = (typeof DOUBLE_FIELDS)[number];

/** Field -> its SQL column name, e.g. COLUMN.destination === "blob3". */
export const COLUMN = Object.freeze({
  ...Object.fromEntries(BLOB_FIELDS.map((f, i) => [f, `blob${i + 1}`])),
  ...Object.fromEntries(DOUBLE_FIELDS.map((f, i) => [f, `double${i + 1}`])),
}) as Readonly<Record<BlobField | DoubleField, string>>;

/** The index (Analytics Engine's sampling key) is the destination service. */
export const INDEX_FIELD = "destination" satisfies BlobField;

/**
 * How many requests one row stands for, as SQL: Analytics Engine's own sampling
 * (`_sample_interval`) times the sidecar's (`sampleWeight`). Analytics Engine offers no way to
 * set `_sample_interval` when writing, so the sidecar's sampling travels in a column of its own.
 */
export const ROW_WEIGHT = `_sample_interval * ${COLUMN.sampleWeight}`;
/** The same as an unsigned integer, as `quantileExactWeighted` wants its weight. */
export const ROW_WEIGHT_UINT = `toUInt32(${ROW_WEIGHT})`;

/** Everything one data point records about one request. Bytes are -1 when not known. */
export interface RequestRecord {
  mesh: string;
  source: string;
  destination: string;
  route: string;
  subset: string;
  endpoint: string;
  outcome: Outcome;
  colo: string;
  method: string;
  /** Why the sidecar answered itself (e.g. "route-timeout", "max-pending"), or why retrying stopped; "" otherwise. */
  reason: string;
  /** Requests this record stands for: the sampling interval in force (1 = every request). */
  sampleWeight: number;
  status: number;
  latencyMs: number;
  attempts: number;
  requestBytes: number;
  responseBytes: number;
  hedged: boolean;
  /** The RPC protocol ("grpc-web", "grpc-web-text", "connect-unary", "connect-stream", "grpc"); "" or absent for plain HTTP. */
  rpcProtocol?: string;
  /** The RPC's service and method from its path ("edgemesh.example.v1.GreeterService", "Greet"); "" when not an RPC or not named. */
  rpcService?: string;
  rpcMethod?: string;
  /** The call's gRPC status code (0-16); -1 (or absent) for plain HTTP or when no status was known. */
  grpcStatus?: number;
}

const textEncoder = new TextEncoder();

/** The index, cut to Analytics Engine's limit; service names are ASCII, so this rarely cuts. */
function indexOf(destination: string): string {
  if (destination.length * 3 <= MAX_INDEX_BYTES) return destination;
  const bytes = textEncoder.encode(destination);
  if (bytes.length <= MAX_INDEX_BYTES) return destination;
  // Cut on a character boundary: drop continuation bytes (10xxxxxx) at the cut.
  let end = MAX_INDEX_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/** The data point for one request, in the layout above (literal arrays: this runs per request). */
export function toDataPoint(r: RequestRecord): DataPoint {
  return {
    blobs: [r.mesh, r.source, r.destination, r.route, r.subset, r.endpoint, r.outcome, r.colo, r.method, r.reason, r.rpcProtocol ?? "", r.rpcService ?? "", r.rpcMethod ?? ""],
    doubles: [r.sampleWeight, r.status, r.latencyMs, r.attempts, r.requestBytes, r.responseBytes, r.hedged ? 1 : 0, r.grpcStatus ?? -1],
    indexes: [indexOf(r.destination)],
  };
}

// The layout must fit Analytics Engine; checked once when the module loads.
if (BLOB_FIELDS.length > MAX_BLOBS || DOUBLE_FIELDS.length > MAX_DOUBLES) {
  throw new Error(`request layout exceeds Analytics Engine's limits: ${BLOB_FIELDS.length} blobs, ${DOUBLE_FIELDS.length} doubles`);
}
