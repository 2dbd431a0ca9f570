// Retry policy: which outcomes may be retried, which methods may be, and how long to wait before
// the next try (exponential backoff with full jitter, or the upstream's Retry-After).
import type { CompiledRetry } from "../../policies/snapshot.ts";
import { failureStatus, isRetriableRpcCode, rpcRetriesAllowed } from "./grpc/outcome.ts";

/**
 * What one try came to, as far as retrying, outlier detection and latency estimates care. An RPC's
 * answer also carries its gRPC code when the sidecar knows it at once (`rpcCode`): from the headers,
 * or from a body that was complete (or peeked) when the headers came.
 */
export type TryOutcome =
  | { kind: "response"; status: number; rpcCode?: number }
  | { kind: "timeout" }
  | { kind: "connect-failure" }
  | { kind: "reset" };

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/**
 * RFC 9110 idempotent methods; others are retried only when the route opts in. An RPC (a POST) may
 * also be retried when the route names gRPC codes to retry on: naming them is the service owner's
 * word that its calls are safe to repeat, as in gRPC's own retry policy.
 */
export function mayRetryMethod(retry: CompiledRetry, method: string, rpc = false): boolean {
  return retry.retryNonIdempotent || IDEMPOTENT.has(method) || (rpc && rpcRetriesAllowed(retry));
}

/**
 * 502, 503, 504 or no response at all. An RPC's answer counts by the HTTP status equivalent to its
 * gRPC code: UNAVAILABLE in an HTTP 200 is a 503 (grpc/outcome.ts).
 */
export function isGatewayError(outcome: TryOutcome): boolean {
  if (outcome.kind !== "response") return true;
  const status = failureStatus(outcome.status, outcome.rpcCode);
  return status === 502 || status === 503 || status === 504;
}

/** Any 5xx (or an RPC code equivalent to one) or no response at all. */
export function isFailure(outcome: TryOutcome): boolean {
  return outcome.kind !== "response" || failureStatus(outcome.status, outcome.rpcCode) >= 500;
}

export function isRetriable(retry: CompiledRetry, outcome: TryOutcome): boolean {
  switch (outcome.kind) {
    case "connect-failure":
      return retry.onConnectFailure || retry.on5xx || retry.onGatewayError;
    case "reset":
      return retry.onReset || retry.on5xx || retry.onGatewayError;
    case "timeout":
      return retry.on5xx || retry.onGatewayError;
    case "response": {
      // HTTP conditions look at the HTTP status, gRPC ones at the code, as in Envoy.
      if (outcome.rpcCode !== undefined && isRetriableRpcCode(retry, outcome.rpcCode)) return true;
      const s = outcome.status;
      if (retry.on5xx && s >= 500) return true;
      if (retry.onGatewayError && (s === 502 || s === 503 || s === 504)) return true;
      return retry.statusCodes.length > 0 && retry.statusCodes.includes(s);
    }
  }
}

/** Full-jitter backoff before retry `retryNumber` (1 for the first retry); `random` in [0, 1). */
export function backoffMs(retry: CompiledRetry, retryNumber: number, random: number): number {
  const ceiling = Math.min(retry.backoffMaxMs, retry.backoffBaseMs * 2 ** Math.min(retryNumber - 1, 30));
  return Math.floor(random * (ceiling + 1));
}

/** Parses Retry-After (delta seconds or an HTTP date) into ms from now; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

export type RetryWait = { kind: "wait"; ms: number } | { kind: "stop"; reason: "deadline" | "retry-after-too-long" };

/**
 * How long to wait before retry `retryNumber`, or why not to retry: a Retry-After longer than
 * allowed ends the retries, and so does a wait that would not leave time for the next try.
 */
export function nextRetryWait(retry: CompiledRetry, retryNumber: number, retryAfter: string | null, remainingMs: number, nowMs: number, random: number): RetryWait {
  const after = retryAfterMs(retryAfter, nowMs);
  let ms: number;
  if (after !== undefined) {
    if (after > retry.maxRetryAfterMs) return { kind: "stop", reason: "retry-after-too-long" };
    ms = after;
  } else ms = backoffMs(retry, retryNumber, random);
  if (ms >= remainingMs) return { kind: "stop", reason: "deadline" };
  return { kind: "wait", ms };
}

/** Classifies a thrown fetch error: a connection that broke mid-way is a reset, anything else a connect failure. */
export function classifyFetchError(err: unknown): "reset" | "connect-failure" {
  const message = err instanceof Error ? err.message : String(err);
  return /connection (was )?(lost|reset|closed)|disconnected|ECONNRESET|socket hang up|network connection/i.test(message) ? "reset" : "connect-failure";
}
