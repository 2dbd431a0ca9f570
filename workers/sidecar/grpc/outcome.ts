// What an RPC try's gRPC status means to the sidecar's HTTP machinery. Retry conditions stay
// separate (an HTTP condition such as "gateway-error" looks at the HTTP status, a gRPC condition
// such as "unavailable" at the gRPC code, as in Envoy), while outlier detection, the balancer's
// error penalty and passive health see the HTTP status equivalent to the code: an instance that
// answers UNAVAILABLE inside an HTTP 200 is failing exactly like one that answers 503.
import type { CompiledRetry } from "../../../policies/snapshot.ts";
import { GrpcCode, httpStatusForCode, type GrpcCode as Code } from "./codes.ts";

/** Whether the route retries this gRPC code (its retryOn names it). */
export function isRetriableRpcCode(retry: CompiledRetry, code: number): boolean {
  return code !== GrpcCode.OK && retry.grpcRetryCodes.length > 0 && retry.grpcRetryCodes.includes(code);
}

/**
 * Whether a route's RPCs may be retried at all. gRPC-Web and Connect calls are POSTs, which the
 * sidecar does not retry unless told; naming a gRPC code in retryOn is that word, as gRPC's own
 * retry policy makes the service owner list the codes that are safe to retry.
 */
export function rpcRetriesAllowed(retry: CompiledRetry): boolean {
  return retry.grpcRetryCodes.length > 0;
}

/**
 * The status outlier detection, the balancer and passive health should record for a try: the
 * HTTP equivalent of its gRPC code when one is known (UNAVAILABLE 503, DEADLINE_EXCEEDED 504,
 * INTERNAL/UNKNOWN/DATA_LOSS 500, RESOURCE_EXHAUSTED 429, CANCELLED 499, ...), else its HTTP status.
 */
export function failureStatus(httpStatus: number, code: number | undefined): number {
  return code === undefined ? httpStatus : httpStatusForCode(code as Code);
}
