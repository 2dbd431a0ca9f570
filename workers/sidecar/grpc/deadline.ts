// RPC deadlines: the caller's grpc-timeout (gRPC, gRPC-Web) or connect-timeout-ms (Connect), capped
// by the route's timeoutMs, enforced by the sidecar and passed upstream as what is left of it, so
// the server stops working on a call nobody waits for any more.
import type { RpcProtocol } from "./protocol.ts";

/** The header each protocol carries its timeout in. */
export function timeoutHeaderName(protocol: RpcProtocol): "grpc-timeout" | "connect-timeout-ms" {
  return protocol === "connect-unary" || protocol === "connect-stream" ? "connect-timeout-ms" : "grpc-timeout";
}

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * grpc-timeout: a positive integer of at most 8 digits and a unit, H (hours), M (minutes),
 * S (seconds), m (milliseconds), u (microseconds) or n (nanoseconds). Returns milliseconds
 * (fractional below 1 ms), or undefined when the value is not of that form.
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * GRPC_UNIT_MS[m[2]!]!;
}

/** connect-timeout-ms: a positive integer of at most 10 digits, in milliseconds. */
export function parseConnectTimeout(value: string): number | undefined {
  const trimmed = value.trim();
  return /^\d{1,10}$/.test(trimmed) ? Number(trimmed) : undefined;
}

export type RequestedTimeout =
  | { kind: "none" }
  | { kind: "timeout"; timeoutMs: number }
  /** Present but unreadable: left as it is for the upstream to judge, and not applied here. */
  | { kind: "malformed"; value: string };

/** The timeout the caller asked for, if any. */
export function requestedTimeout(protocol: RpcProtocol, headers: Headers): RequestedTimeout {
  const value = headers.get(timeoutHeaderName(protocol));
  if (value === null) return { kind: "none" };
  const timeoutMs = protocol === "connect-unary" || protocol === "connect-stream" ? parseConnectTimeout(value) : parseGrpcTimeout(value);
  return timeoutMs === undefined ? { kind: "malformed", value } : { kind: "timeout", timeoutMs };
}

export interface RpcDeadline {
  /** How long the sidecar gives the call, from its arrival: min(caller's timeout, route's timeoutMs). */
  timeoutMs: number;
  /** Which one set it: the caller's timeout ("caller") or the route's ("route"). */
  setBy: "caller" | "route";
  /** Whether the caller sent a readable timeout, so one is propagated upstream. */
  propagate: boolean;
}

/**
 * The call's deadline: the caller's timeout capped by the route's. A caller without a timeout gets
 * the route's, which is then not propagated: the sidecar enforces it, but inventing a deadline the
 * caller never set would tell a server to cut streams the caller is happy to wait for.
 */
export function rpcDeadline(requested: RequestedTimeout, routeTimeoutMs: number): RpcDeadline {
  if (requested.kind !== "timeout") return { timeoutMs: routeTimeoutMs, setBy: "route", propagate: false };
  if (requested.timeoutMs < routeTimeoutMs) return { timeoutMs: requested.timeoutMs, setBy: "caller", propagate: true };
  return { timeoutMs: routeTimeoutMs, setBy: "route", propagate: true };
}

/**
 * grpc-timeout for `ms` (> 0): whole milliseconds while they fit the 8 digits, else coarser units.
 * Rounded down, so the upstream's deadline never outlasts the sidecar's: the upstream then answers
 * DEADLINE_EXCEEDED itself, with its own message, rather than racing the sidecar.
 */
export function encodeGrpcTimeout(ms: number): string {
  if (ms < 1) return `${Math.max(1, Math.floor(ms * 1_000_000))}n`;
  for (const [unit, unitMs] of [["m", 1], ["S", 1_000], ["M", 60_000], ["H", 3_600_000]] as const) {
    const n = Math.floor(ms / unitMs);
    if (n <= 99_999_999) return `${Math.max(1, n)}${unit}`;
  }
  return "99999999H";
}

/**
 * The header that tells the upstream how much of the deadline is left, e.g.
 * ["grpc-timeout", "250m"] or ["connect-timeout-ms", "250"]; undefined when no time is left
 * (the caller gets DEADLINE_EXCEEDED from the sidecar instead).
 */
export function remainingTimeoutHeader(protocol: RpcProtocol, remainingMs: number): [string, string] | undefined {
  if (!(remainingMs > 0)) return undefined;
  const name = timeoutHeaderName(protocol);
  return [name, name === "grpc-timeout" ? encodeGrpcTimeout(remainingMs) : String(Math.max(1, Math.floor(remainingMs)))];
}
