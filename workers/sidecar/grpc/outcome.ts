// What an RPC try's gRPC status means to the sidecar's HTTP machinery. Retry conditions stay
// separate (an HTTP condition such as "gateway-error" looks at the HTTP status, a gRPC condition
// such as "unavailable" at the gRPC code, as in Envoy), while outlier detection, the balancer's
// error penalty and passive health see the HTTP status equivalent to the code: an instance that
// answers UNAVAILABLE inside an HTTP 200 is failing exactly like one that answers 503.
import type { CompiledRetry } from "../../../policies/snapshot.ts";
import { GrpcCode, httpStatusForCode } from "./codes.ts";
import type { RpcStatus } from "./status.ts";

/** Whether the route retries this gRPC status (its retryOn names the code). */
export function isRetriableRpcStatus(retry: CompiledRetry, status: RpcStatus | undefined): boolean {
  return status !== undefined && status.code !== GrpcCode.OK && retry.grpcRetryCodes.includes(status.code);
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
export function failureStatus(httpStatus: number, status: RpcStatus | undefined): number {
  return status === undefined ? httpStatus : httpStatusForCode(status.code);
}
