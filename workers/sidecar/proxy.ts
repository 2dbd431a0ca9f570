// The upstream stage of the pipeline: pick an endpoint, send a try under its deadline (with an
// injected fault, maybe hedged), classify, and retry within policy, budget and the route's deadline
// on another endpoint. Each decision is made by its own module; this file only sequences them and
// records every real try's outcome for the balancer and outlier detection.
import type { CompiledRoute, ServiceSnapshot } from "../../policies/snapshot.ts";
import { alignForward, newAlignment, type Alignment } from "./align.ts";
import { chooseEndpoint, loadOf, recordLatency, recordLatencyLowerBound, retainLoads, tryFinished, tryStarted, type TryLease } from "./balance.ts";
import { bodyForTry, isReplayable, type BodyPlan } from "./body.ts";
import { recordRequest, withdrawRetry, type RetryBudgetState } from "./budget.ts";
import { GrpcCode } from "./grpc/codes.ts";
import { decideFault, faultResponse, NO_FAULT } from "./fault.ts";
import { targetUrl, tryHeaders, upstreamFor } from "./forward.ts";
import { hedge as runHedged, type RunningTry } from "./hedge.ts";
import { remainingTimeoutHeader } from "./grpc/deadline.ts";
import { DEFAULT_MAX_STATUS_BYTES, readRpcAnswer, type RpcBodyReader } from "./grpc/inspect.ts";
import type { RpcCall } from "./grpc/protocol.ts";
import type { RpcStatus } from "./grpc/status.ts";
import { LEASE_GRACE_MS } from "./lease.ts";
import { isAdmitted, newOutlierState, recordOutlierOutcome, retainEndpoints, takeProbe, type OutlierState } from "./outlier.ts";
import { isNullBodyStatus, meshError } from "./responses.ts";
import { sleep } from "./sleep.ts";
import { classifyFetchError, isFailure, isGatewayError, isRetriable, mayRetryMethod, nextRetryWait, type TryOutcome } from "./retry.ts";
import { discardBody, MAX_AVAILABLE_BYTES, readAvailable, type BodyStart } from "./stream.ts";

/** Per-isolate state of one service, plain data owned by the sidecar's module globals. */
export interface ResilienceState {
  outliers: OutlierState;
  budget: RetryBudgetState;
  /** The snapshot the outlier and load state follows (only ever a newer one: align.ts). */
  alignment: Alignment;
}

export function newResilienceState(budget: RetryBudgetState): ResilienceState {
  return { outliers: newOutlierState(), budget, alignment: newAlignment() };
}

/** An RPC call (gRPC-Web or Connect) and what its deadline asks of each try. */
export interface RpcRequest {
  call: RpcCall;
  /** The caller sent a timeout: each try tells the upstream what is left of the deadline. */
  propagate: boolean;
  /** The deadline is the caller's (shorter than the route's timeout): a timeout says so. */
  callerDeadline: boolean;
}

export interface ProxyRequest {
  snapshot: ServiceSnapshot;
  route: CompiledRoute;
  /** The chosen subset's members (indexes into snapshot.endpoints). */
  members: readonly number[];
  method: string;
  url: URL;
  /**
   * The incoming request itself when it can be sent upstream as it is (the same URL, headers and
   * method, no body): a try to a binding endpoint then sends it instead of building a copy.
   */
  original: Request | undefined;
  /**
   * The headers to send upstream (the sidecar's own x-edgemesh-* already taken off). Mutable when
   * `rpc.propagate`: each try sets the timeout header to what is left.
   */
  headers: Headers;
  /** For tries to origin URLs: `headers` plus the caller's forwarded mesh token (forward.ts). */
  originHeaders?: Headers;
  body: BodyPlan;
  env: Record<string, unknown>;
  colo: string;
  hashKey: string | undefined;
  /** Whether the route's per-try faults apply to this request (its header condition holds). */
  faultTargeted: boolean;
  startedMs: number;
  /** No try is sent after this; the route's timeout, or an RPC caller's shorter one. */
  deadlineMs: number;
  /**
   * Read each answer's body as far as it is there (stream.ts): the route watches response bodies
   * (streamIdleTimeoutMs above 0). An RPC's answer is always read, for its status.
   */
  readBodies: boolean;
  rpc: RpcRequest | undefined;
  /** Told about every real try (not injected faults, not cancelled hedges), e.g. for passive health. */
  onTryEnded?: (endpointId: string, failed: boolean, latencyMs: number) => void;
}

export interface TryResult {
  outcome: TryOutcome;
  /** undefined when there was no response (timeout, connect failure, reset). */
  response: Response | undefined;
  endpoint: number;
  /** The outcome came from fault injection, not from the endpoint. */
  injected: boolean;
  /** What went wrong, for operators (debug header, never the response body). */
  error: string;
  /**
   * Set when `response` is the endpoint's own: the try stays counted as in flight until its body
   * is done, so whoever ends up with the response must finish it (tryFinished).
   */
  lease: TryLease | undefined;
  /** The response's body as far as it was read when the headers came; its reader now owns the body. */
  body: BodyStart | undefined;
  /** An RPC answer's status reader (fed `body`'s head), and the status when it was known at once. */
  rpc: RpcBodyReader | undefined;
  rpcStatus: RpcStatus | undefined;
  /** An RPC stream's outcome for outlier detection and passive health, recorded when its status is known. */
  pendingOutcome: PendingOutcome | undefined;
}

export interface ProxyResult {
  response: Response;
  /** The endpoint that answered (or last failed); -1 when no try was sent. */
  endpoint: number;
  tries: number;
  hedged: boolean;
  /** Why retrying stopped early, when it did: "retry-budget-exhausted", "deadline", "retry-after-too-long", "not-replayable". */
  retryStoppedBy: string;
  /** When `response` is the endpoint's own: its try, still in flight until the body is done. */
  lease: TryLease | undefined;
  /** What went wrong with the last try, for operators; "" when nothing did. */
  errorDetail: string;
  /** The answer's body as far as it was read (see TryResult); undefined when not read. */
  body: BodyStart | undefined;
  rpc: RpcBodyReader | undefined;
  rpcStatus: RpcStatus | undefined;
  pendingOutcome: PendingOutcome | undefined;
}

const unhealthyIn = new WeakMap<ServiceSnapshot, boolean>();

function hasUnhealthy(snapshot: ServiceSnapshot): boolean {
  let known = unhealthyIn.get(snapshot);
  if (known === undefined) {
    known = snapshot.endpoints.some((e) => e.healthy === false);
    unhealthyIn.set(snapshot, known);
  }
  return known;
}

/** `mayProbe`: the request may be retried, so a failed probe costs the client nothing. */
function pick(req: ProxyRequest, state: ResilienceState, tried: readonly number[], nowMs: number, mayProbe: boolean): number {
  const { snapshot } = req;
  const endpoints = snapshot.endpoints;
  if (mayProbe && tried.length === 0) {
    // An ejected endpoint whose time is up gets this request as its single probe.
    const probe = takeProbe(state.outliers, snapshot.outlierDetection, endpoints, req.members, nowMs);
    if (probe >= 0) return probe;
  }
  const outliers = state.outliers;
  const available = outliers.ejectedCount > 0 || hasUnhealthy(snapshot)
    ? (i: number) => endpoints[i]!.healthy !== false && isAdmitted(outliers, endpoints[i]!.id)
    : undefined;
  return chooseEndpoint(snapshot.loadBalancer, endpoints, req.members, { nowMs, random: Math.random, exclude: tried, available, hashKey: req.hashKey, colo: req.colo });
}

/** A try given up on may still answer later: its body is cancelled so nothing holds it open. */
function discardLateAnswer(sent: Promise<{ response: Response } | { err: unknown }>): void {
  sent.then((r) => ("response" in r ? r.response.body?.cancel() : undefined), () => {});
}

/** A result nobody will answer with: its body is cancelled and its try is over. */
function discard(result: TryResult): void {
  if (result.lease) tryFinished(result.lease);
  if (result.body) discardBody(result.body);
  else result.response?.body?.cancel().catch(() => {});
}

/** Records what a try came to for the balancer's error penalty, outlier detection and passive health. */
function recordTryOutcome(req: ProxyRequest, state: ResilienceState, endpointId: string, failed: boolean, gatewayError: boolean, latencyMs: number, nowMs: number): void {
  const outlierOutcome = !failed ? "success" : gatewayError ? "gateway-error" : "5xx";
  recordOutlierOutcome(state.outliers, req.snapshot.outlierDetection, endpointId, outlierOutcome, req.snapshot.endpoints.length, nowMs);
  req.onTryEnded?.(endpointId, failed, latencyMs);
}

/**
 * The outcome of an RPC try whose status comes at the end of its body (a stream): its latency was
 * recorded when the headers came; the rest waits for the status. A client that went away
 * (CANCELLED by the client) says nothing about the endpoint and is not recorded.
 */
export class PendingOutcome {
  constructor(
    private readonly req: ProxyRequest,
    private readonly state: ResilienceState,
    private readonly endpoint: number,
    private readonly latencyMs: number,
  ) {}

  record(httpStatus: number, status: RpcStatus): void {
    if (status.source === "aborted" && status.code === GrpcCode.CANCELLED) return;
    const outcome: TryOutcome = { kind: "response", status: httpStatus, rpcCode: status.code };
    const failed = isFailure(outcome);
    const { req } = this;
    const endpoint = req.snapshot.endpoints[this.endpoint]!;
    const nowMs = Date.now();
    // The latency sample went in as a success; a failure adds the error penalty now.
    if (failed) recordLatency(loadOf(endpoint.id), this.latencyMs, true, req.snapshot.loadBalancer, nowMs);
    recordTryOutcome(req, this.state, endpoint.id, failed, isGatewayError(outcome), this.latencyMs, nowMs);
  }
}

/**
 * Starts one try to `index`, answering by `timeoutMs` at the latest; cancellable (hedging).
 * `peek`: the try may still be retried on a gRPC code, so an RPC answer's first frame is read
 * before the try counts as answered. `abortable`: the try may be given up on while its request
 * goes on (a hedge, a per-try timeout with time left), so it carries an AbortSignal that tells the
 * upstream. Any other try ends only with its request, and the runtime cancels whatever is still
 * running then; a signal on it would only make every read of its body dearer (about 10 µs of CPU
 * a request, measured with scripts/bench/hop-profile.ts).
 */
function startTry(req: ProxyRequest, state: ResilienceState, index: number, timeoutMs: number, peek: boolean, abortable: boolean): RunningTry<TryResult> {
  const endpoint = req.snapshot.endpoints[index]!;
  const controller = abortable ? new AbortController() : undefined;
  let stop: (why: "timeout" | "cancelled") => void = () => {};
  const stopped = new Promise<"timeout" | "cancelled">((resolve) => (stop = resolve));
  const timer = setTimeout(() => stop("timeout"), timeoutMs);
  const fault = req.faultTargeted && req.route.fault ? decideFault(req.route.fault, Math.random) : NO_FAULT;

  const base = { endpoint: index, error: "", lease: undefined, body: undefined, rpc: undefined, rpcStatus: undefined, pendingOutcome: undefined };
  const run = async (): Promise<TryResult> => {
    if (fault.delayMs > 0) {
      let delayTimer: ReturnType<typeof setTimeout> | undefined;
      const slept = new Promise<"slept">((resolve) => (delayTimer = setTimeout(() => resolve("slept"), fault.delayMs)));
      const first = await Promise.race([slept, stopped]);
      clearTimeout(delayTimer);
      if (first !== "slept") return { ...base, outcome: { kind: "timeout" }, response: undefined, injected: true };
    }
    if (fault.abortStatus > 0) return { ...base, outcome: { kind: "response", status: fault.abortStatus }, response: faultResponse(fault.abortStatus), injected: true };

    const upstream = upstreamFor(endpoint, req.env);
    if (typeof upstream === "string") {
      return { ...base, outcome: { kind: "connect-failure" }, response: meshError(502, "x-edgemesh-error", "missing-binding"), injected: false, error: upstream };
    }
    if (req.rpc?.propagate) {
      // What is left of the deadline when this try goes, rounded down: the upstream gives up first.
      const header = remainingTimeoutHeader(req.rpc.call.protocol, req.deadlineMs - Date.now());
      if (header) {
        req.headers.set(header[0], header[1]);
        req.originHeaders?.set(header[0], header[1]);
      }
    }
    // Built before the try counts as started: a request that cannot be built never leaves a try in flight.
    const upstreamRequest = req.original !== undefined && controller === undefined && endpoint.url === undefined && !req.rpc?.propagate
      ? req.original
      : new Request(targetUrl(endpoint, req.url), { method: req.method, headers: tryHeaders(endpoint, req.headers, req.originHeaders), body: bodyForTry(req.body, req.method), redirect: "manual", signal: controller?.signal ?? null });
    const load = loadOf(endpoint.id);
    const startedMs = Date.now();
    const lease = tryStarted(load, startedMs, startedMs + timeoutMs + LEASE_GRACE_MS);
    let sent: Promise<{ response: Response } | { err: unknown }>;
    try {
      sent = upstream.fetch(upstreamRequest).then((response) => ({ response }), (err: unknown) => ({ err }));
    } catch (err) {
      // A binding that throws at once is a failed try like one that rejects.
      sent = Promise.resolve({ err });
    }
    const first = await Promise.race([sent, stopped]);
    const nowMs = Date.now();
    const lb = req.snapshot.loadBalancer;
    if (first === "cancelled") {
      controller?.abort("hedge lost");
      // The other try won, but this one had already taken this long: a lower bound of its
      // latency, so the balancer learns that the endpoint is slow.
      recordLatencyLowerBound(load, nowMs - startedMs, lb, nowMs);
      tryFinished(lease);
      discardLateAnswer(sent);
      return { ...base, outcome: { kind: "timeout" }, response: undefined, injected: false, error: "cancelled" };
    }
    let result: TryResult;
    if (first === "timeout") {
      controller?.abort("per-try timeout");
      discardLateAnswer(sent);
      result = { ...base, outcome: { kind: "timeout" }, response: undefined, injected: false, error: `no response headers within ${timeoutMs} ms` };
    } else if ("response" in first) {
      let answered: Answered | "stopped" | "failed";
      try {
        answered = await readAnswer(req, first.response, peek, stopped);
      } catch {
        // Reading the answer broke in a way the body path does not expect: a reset try, never one left in flight.
        answered = "failed";
      }
      if (answered === "stopped") {
        // Peeking for the first frame ran into the try's deadline (or a hedge won meanwhile).
        controller?.abort("per-try timeout");
        result = { ...base, outcome: { kind: "timeout" }, response: undefined, injected: false, error: `no first message within ${timeoutMs} ms` };
      } else if (answered === "failed") {
        result = { ...base, outcome: { kind: "reset" }, response: undefined, injected: false, error: "the answer's body failed before its first message" };
      } else {
        result = { ...base, ...answered, injected: false, lease };
      }
    } else {
      const message = first.err instanceof Error ? first.err.message : String(first.err);
      result = { ...base, outcome: { kind: classifyFetchError(first.err) }, response: undefined, injected: false, error: message };
    }
    // A try without a response is over; one with a response stays in flight until its body is.
    if (!result.lease) tryFinished(lease);
    const failed = isFailure(result.outcome);
    const latencyMs = nowMs - startedMs;
    recordLatency(load, latencyMs, failed, lb, nowMs);
    // An RPC stream whose status is still to come is judged when it comes.
    if (req.rpc !== undefined && result.response !== undefined && result.rpcStatus === undefined) result.pendingOutcome = new PendingOutcome(req, state, index, latencyMs);
    else recordTryOutcome(req, state, endpoint.id, failed, isGatewayError(result.outcome), latencyMs, nowMs);
    return result;
  };
  // A try always answers: anything thrown becomes a connect failure naming the error.
  const settled = async (): Promise<TryResult> => {
    try {
      return await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ...base, outcome: { kind: "connect-failure" }, response: undefined, injected: false, error: message };
    } finally {
      clearTimeout(timer);
    }
  };
  return { result: settled(), cancel: () => stop("cancelled") };
}

type Answered = Pick<TryResult, "outcome" | "response" | "body" | "rpc" | "rpcStatus">;

/**
 * An endpoint's answer, its body read as far as it is already there (stream.ts) when the route
 * watches bodies or the call is an RPC, and an RPC's status when the headers or that start tell
 * it (peeked for when `peek`). "stopped": a peek for the first frame ran into the try's deadline;
 * "failed": the body failed while being peeked.
 */
async function readAnswer(req: ProxyRequest, response: Response, peek: boolean, stopped: Promise<unknown>): Promise<Answered | "stopped" | "failed"> {
  const status = response.status;
  const hasBody = response.body !== null && !response.webSocket && !isNullBodyStatus(status);
  if (req.rpc === undefined) {
    const body = hasBody && req.readBodies ? await readAvailable(response.body!, MAX_AVAILABLE_BYTES) : undefined;
    return { outcome: { kind: "response", status }, response, body, rpc: undefined, rpcStatus: undefined };
  }
  const answer = await readRpcAnswer(req.rpc.call, hasBody ? response : new Response(null, response), peek ? { maxBytes: DEFAULT_MAX_STATUS_BYTES, stop: stopped } : undefined);
  if (typeof answer === "string") return answer;
  return { outcome: { kind: "response", status, rpcCode: answer.status?.code }, response, body: answer.body, rpc: answer.reader, rpcStatus: answer.status };
}

// Error bodies name what happened and which route, never raw exception text: the client may be anyone.
function routeTimeout(req: ProxyRequest): Response {
  const timeoutMs = req.deadlineMs - req.startedMs;
  if (req.rpc?.callerDeadline) return meshError(504, "x-edgemesh-timeout", "caller-deadline", { route: req.route.name, timeoutMs });
  return meshError(504, "x-edgemesh-timeout", "route-timeout", { route: req.route.name, timeoutMs });
}

function finalResponse(req: ProxyRequest, result: TryResult, deadlineMs: number): Response {
  if (result.response) return result.response;
  switch (result.outcome.kind) {
    case "timeout":
      return Date.now() >= deadlineMs - 1
        ? routeTimeout(req)
        : meshError(504, "x-edgemesh-timeout", "per-try-timeout", { route: req.route.name, perTryTimeoutMs: req.route.retry.perTryTimeoutMs });
    case "reset":
      return meshError(502, "x-edgemesh-error", "upstream-reset", { route: req.route.name });
    default:
      return meshError(502, "x-edgemesh-error", "connect-failure", { route: req.route.name });
  }
}

/** Moves the outlier and load state to `snapshot` when it is newer than the one they follow. */
function realign(state: ResilienceState, snapshot: ServiceSnapshot): void {
  if (!alignForward(state.alignment, snapshot)) return;
  const ids = new Set(snapshot.endpoints.map((e) => e.id));
  retainEndpoints(state.outliers, snapshot.outlierDetection, ids);
  retainLoads(ids);
}

/**
 * Sends the request upstream with the route's retries, hedging, timeouts and faults. `attempts`
 * bounds every try the request makes, hedges included, and no try is sent once the route's
 * deadline has passed.
 */
export async function proxy(req: ProxyRequest, state: ResilienceState): Promise<ProxyResult> {
  const { route, snapshot } = req;
  const retry = route.retry;
  const budgetCfg = snapshot.retryBudget;
  const deadlineMs = req.deadlineMs;
  const replayable = isReplayable(req.body) && mayRetryMethod(retry, req.method, req.rpc !== undefined);
  // An RPC's answer is peeked for its first frame only while a retry on a gRPC code is possible.
  const peekRpc = req.rpc !== undefined && replayable && retry.grpcRetryCodes.length > 0;
  const maxTries = replayable ? 1 + retry.attempts : 1;
  const tried: number[] = [];
  let hedged = false;
  // Counted now, not when the request arrived: a late record must not land in a bucket the budget
  // has already moved past (budget.ts also refuses to move backwards).
  recordRequest(state.budget, budgetCfg, Date.now());
  realign(state, snapshot);
  const stopped = (response: Response, endpoint: number, retryStoppedBy: string, errorDetail: string): ProxyResult =>
    ({ response, endpoint, tries: tried.length, hedged, retryStoppedBy, lease: undefined, errorDetail, body: undefined, rpc: undefined, rpcStatus: undefined, pendingOutcome: undefined });

  for (let n = 0; ; n++) {
    const nowMs = Date.now();
    // Past the deadline nothing is sent: the client is told 504, so the upstream must not act on it.
    if (nowMs >= deadlineMs) return stopped(routeTimeout(req), -1, n > 0 ? "deadline" : "", "");
    const index = pick(req, state, tried, nowMs, maxTries > 1);
    if (index < 0) return stopped(meshError(503, "x-edgemesh-error", "no-endpoint", { route: route.name }), -1, "", "");
    tried.push(index);
    const remainingMs = deadlineMs - nowMs;
    const tryTimeoutMs = retry.perTryTimeoutMs > 0 ? Math.min(retry.perTryTimeoutMs, remainingMs) : remainingMs;
    const hedge = route.hedge;
    const hedging = hedge !== undefined && replayable && hedge.afterMs < tryTimeoutMs && tried.length < maxTries;
    const first = startTry(req, state, index, tryTimeoutMs, peekRpc && tried.length < maxTries, hedging || tryTimeoutMs < remainingMs);
    let result: TryResult;
    if (hedging) {
      const outcome = await runHedged(
        first,
        hedge.afterMs,
        () => {
          const now = Date.now();
          const hedgeTimeoutMs = Math.min(tryTimeoutMs, deadlineMs - now);
          if (tried.length >= maxTries || hedgeTimeoutMs <= 0) return undefined;
          const other = pick(req, state, tried, now, false);
          if (other < 0 || tried.includes(other) || !withdrawRetry(state.budget, budgetCfg, now)) return undefined;
          tried.push(other);
          return startTry(req, state, other, hedgeTimeoutMs, peekRpc && tried.length < maxTries, true);
        },
        (r) => !isRetriable(retry, r.outcome),
        discard,
      );
      result = outcome.value;
      hedged ||= outcome.hedged;
    } else result = await first.result;

    const done = (retryStoppedBy: string): ProxyResult => ({
      response: finalResponse(req, result, deadlineMs), endpoint: result.endpoint, tries: tried.length, hedged, retryStoppedBy, lease: result.lease, errorDetail: result.error,
      body: result.body, rpc: result.rpc, rpcStatus: result.rpcStatus, pendingOutcome: result.pendingOutcome,
    });
    if (!isRetriable(retry, result.outcome)) return done("");
    if (result.injected && route.fault?.bypassRetries) return done("");
    if (!replayable) return done(isReplayable(req.body) ? "" : "not-replayable");
    if (tried.length >= maxTries) return done("");
    const remaining = deadlineMs - Date.now();
    if (remaining <= 0) return done("deadline");
    const wait = nextRetryWait(retry, n + 1, result.response?.headers.get("retry-after") ?? null, remaining, Date.now(), Math.random());
    if (wait.kind === "stop") return done(wait.reason);
    if (!withdrawRetry(state.budget, budgetCfg, Date.now())) return done("retry-budget-exhausted");
    discard(result);
    if (wait.ms > 0) await sleep(wait.ms);
  }
}
