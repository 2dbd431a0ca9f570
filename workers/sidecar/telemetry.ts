// Per-request telemetry: what the sidecar learns about a request as it passes the pipeline (a
// trace), how the request ended (its outcome), and the record that becomes one data point. Pure
// logic over plain data; where the record goes is telemetry-sink.ts.
import type { Outcome, RequestRecord } from "../../analytics/request-layout.ts";
import { failureStatus } from "./grpc/outcome.ts";
import type { RpcCall } from "./grpc/protocol.ts";

/** What the pipeline learns about one request. One small object per request, filled in as it goes. */
export interface RequestTrace {
  startedMs: number;
  source: string;
  method: string;
  colo: string;
  /** From content-length, or the buffered body's size; -1 for a streamed body of unknown size. */
  requestBytes: number;
  /** false for debug endpoints and for services whose telemetry is off. */
  enabled: boolean;
  sampleInterval: number;
  /** Count a response body's bytes as it streams when no content-length tells them. */
  countStreamedBytes: boolean;
  route: string;
  subset: string;
  endpoint: string;
  attempts: number;
  hedged: boolean;
  reason: string;
  /** Set when the sidecar answers itself for a reason only it knows; otherwise read from the response. */
  outcome: Outcome | undefined;
  /** The response body's size when the sidecar knows it (read whole, or counted as it streamed); -1 otherwise. */
  responseBytes: number;
  /** A gRPC-Web or Connect call (grpc/protocol.ts); undefined for plain HTTP. */
  rpc: RpcCall | undefined;
  /** The call's gRPC status code once known; -1 while not (or for plain HTTP). */
  rpcCode: number;
  /**
   * Set while the response body streams and the record waits for its end: an RPC's status is only
   * known then, and a streamed body's size when the policy asks for it to be counted.
   */
  finished: Promise<void> | undefined;
}

export function startTrace(request: Request, source: string, startedMs: number): RequestTrace {
  return {
    startedMs,
    source,
    method: request.method,
    colo: "",
    requestBytes: bodyBytes(request.headers, request.body !== null),
    enabled: true,
    sampleInterval: 1,
    countStreamedBytes: false,
    route: "",
    subset: "",
    endpoint: "",
    attempts: 0,
    hedged: false,
    reason: "",
    outcome: undefined,
    responseBytes: -1,
    rpc: undefined,
    rpcCode: -1,
    finished: undefined,
  };
}

/** A body's size from its content-length; 0 without a body; -1 when only counting could tell. */
export function bodyBytes(headers: Headers, hasBody: boolean): number {
  const length = headers.get("content-length");
  if (length !== null) {
    const n = Number(length);
    if (Number.isSafeInteger(n) && n >= 0) return n;
  }
  return hasBody ? -1 : 0;
}

/** Whether this request is recorded: one in `interval`, at random. */
export function sampled(interval: number, random: () => number): boolean {
  return interval <= 1 || random() * interval < 1;
}

/**
 * How a request ended, from its final response. Responses the sidecar made itself say why in
 * their x-edgemesh-* headers (see responses.ts); anything else is the upstream's answer, judged by
 * its status, or for an RPC by the HTTP status equivalent to its gRPC code (`rpcCode`, -1 when not
 * known): UNAVAILABLE or INTERNAL in an HTTP 200 is a failure like a 503 or a 500.
 */
export function outcomeOf(response: Response, attempts: number, rpcCode = -1): { outcome: Outcome; reason: string } {
  const h = response.headers;
  if (h.get("x-edgemesh-generated") === null) {
    if (failureStatus(response.status, rpcCode < 0 ? undefined : rpcCode) >= 500) return { outcome: "failed", reason: "" };
    return { outcome: attempts > 1 ? "retried-ok" : "ok", reason: "" };
  }
  if (h.get("x-edgemesh-fault") !== null) return { outcome: "fault-injected", reason: "abort" };
  const timeout = h.get("x-edgemesh-timeout");
  if (timeout !== null) return { outcome: "timeout", reason: timeout };
  const overloaded = h.get("x-edgemesh-overloaded");
  if (overloaded !== null) return { outcome: "shed", reason: overloaded };
  const noRoute = h.get("x-edgemesh-no-route");
  if (noRoute !== null) return { outcome: "no-route", reason: noRoute };
  const error = h.get("x-edgemesh-error") ?? "";
  if (error === "no-endpoint") return { outcome: "no-endpoint", reason: error };
  if (error === "no-snapshot") return { outcome: "no-snapshot", reason: error };
  if (error === "sidecar-internal-error") return { outcome: "error", reason: error };
  const denied = h.get("x-edgemesh-denied-by");
  if (denied !== null) return { outcome: "denied", reason: denied };
  const unauthenticated = h.get("x-edgemesh-unauthenticated");
  if (unauthenticated !== null) return { outcome: "unauthenticated", reason: unauthenticated };
  const limited = h.get("x-edgemesh-rate-limited");
  if (limited !== null) return { outcome: "rate-limited", reason: limited };
  // connect-failure, upstream-reset, missing-binding, ...: the upstream could not be reached.
  return { outcome: response.status >= 500 ? "failed" : "ok", reason: error };
}

export interface Where {
  mesh: string;
  destination: string;
}

/** The record of a finished request; `responseBytes` is -1 when not known (yet). */
export function recordOf(trace: RequestTrace, where: Where, status: number, outcome: Outcome, reason: string, latencyMs: number, responseBytes: number): RequestRecord {
  return {
    mesh: where.mesh,
    source: trace.source,
    destination: where.destination,
    route: trace.route,
    subset: trace.subset,
    endpoint: trace.endpoint,
    outcome,
    colo: trace.colo,
    method: trace.method,
    reason,
    sampleWeight: trace.sampleInterval,
    status,
    latencyMs,
    attempts: trace.attempts,
    requestBytes: trace.requestBytes,
    responseBytes,
    hedged: trace.hedged,
    rpcProtocol: trace.rpc?.protocol ?? "",
    rpcService: trace.rpc?.service ?? "",
    rpcMethod: trace.rpc?.method ?? "",
    grpcStatus: trace.rpcCode,
  };
}

/**
 * Passes a body through unchanged and counts its bytes; `done` gets the count when the body has
 * been read to the end, or -1 when it was cancelled or failed before that (the client went away).
 */
export function countedBody(body: ReadableStream<Uint8Array>, done: (bytes: number) => void): ReadableStream<Uint8Array> {
  let bytes = 0;
  let reported = false;
  const report = (n: number) => {
    if (!reported) {
      reported = true;
      done(n);
    }
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done: ended, value } = await reader.read();
          if (ended) {
            controller.close();
            report(bytes);
            return;
          }
          bytes += value.byteLength;
          controller.enqueue(value);
        } catch (err) {
          report(-1);
          controller.error(err);
        }
      },
      cancel(reason) {
        report(-1);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
