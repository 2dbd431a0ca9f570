// gRPC status codes and the three ways they meet HTTP: the numbers gRPC and gRPC-Web carry in
// grpc-status, the snake_case names the Connect protocol carries in JSON, and the HTTP statuses
// both map to and from. One table, so the classifier, the error responses and the retry
// conditions can never disagree about what "unavailable" means.

export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/**
 * Connect's names, index = code. Connect spells code 1 "canceled" (gRPC's docs say CANCELLED);
 * "cancelled" is accepted when reading, never written.
 */
const CONNECT_NAMES = [
  "ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
  "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
  "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
] as const;

const BY_CONNECT_NAME = new Map<string, GrpcCode>(CONNECT_NAMES.map((n, i) => [n, i as GrpcCode]));
BY_CONNECT_NAME.set("cancelled", GrpcCode.CANCELLED);

export function isGrpcCode(n: number): n is GrpcCode {
  return Number.isInteger(n) && n >= 0 && n <= 16;
}

/** The Connect name of a code, as written in error JSON: "unavailable", "deadline_exceeded", ... */
export function connectCodeName(code: GrpcCode): string {
  return CONNECT_NAMES[code];
}

/** A Connect code name back to its number; undefined for anything else. */
export function codeFromConnectName(name: unknown): GrpcCode | undefined {
  return typeof name === "string" ? BY_CONNECT_NAME.get(name) : undefined;
}

/** The gRPC constant name of a code, for messages and telemetry: "UNAVAILABLE". */
export function grpcCodeName(code: GrpcCode): string {
  return CONNECT_NAMES[code].toUpperCase().replace("CANCELED", "CANCELLED");
}

// Connect's code -> HTTP status for unary errors (connectrpc.com/docs/protocol, "Error Codes").
// Envoy uses the same table to turn a gRPC status into an HTTP one.
const HTTP_STATUS_OF_CODE: readonly number[] = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/**
 * The HTTP status equivalent to a gRPC code: what a Connect unary error carries, and what the
 * sidecar's HTTP-level machinery (retry conditions, outlier detection, passive health, the EWMA's
 * error penalty) should see for a gRPC outcome. UNAVAILABLE is a 503, a gateway error, so an
 * instance answering it is ejected like one answering 503.
 */
export function httpStatusForCode(code: GrpcCode): number {
  return HTTP_STATUS_OF_CODE[code]!;
}

/**
 * The code a gRPC or gRPC-Web client infers from an HTTP status when the response carries no
 * gRPC status (github.com/grpc/grpc doc/http-grpc-status-mapping.md; Connect uses the same for
 * responses that are not Connect errors).
 */
export function codeForHttpStatus(status: number): GrpcCode {
  switch (status) {
    case 200:
      return GrpcCode.OK;
    case 400:
      return GrpcCode.INTERNAL;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 403:
      return GrpcCode.PERMISSION_DENIED;
    case 404:
      return GrpcCode.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}
