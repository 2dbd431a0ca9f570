// The upstream stage of the pipeline: pick an endpoint, send a try under its deadline (with an
// injected fault, maybe hedged), classify, and retry within policy, budget and the route's deadline
// on another endpoint. Each decision is made by its own module; this file only sequences them and
// records every real try's outcome for the balancer and outlier detection.
import type { CompiledRoute, ServiceSnapshot } from "../../policies/snapshot.ts";
import { alignForward, newAlignment, type Alignment } from "./align.ts";
import { chooseEndpoint, loadOf, recordLatency, recordLatencyLowerBound, retainLoads, tryFinished, tryStarted, type TryLease } from "./balance.ts";
import { bodyForTry, isReplayable, type BodyPlan } from "./body.ts";
import { recordRequest, withdrawRetry, type RetryBudgetState } from "./budget.ts";
import { decideFault, faultResponse, NO_FAULT } from "./fault.ts";
import { targetUrl, tryHeaders, upstreamFor } from "./forward.ts";
import { hedge, type RunningTry } from "./hedge.ts";
import { LEASE_GRACE_MS } from "./lease.ts";
import { isAdmitted, newOutlierState, recordOutlierOutcome, retainEndpoints, takeProbe, type OutlierState } from "./outlier.ts";
import { meshError } from "./responses.ts";
import { sleep } from "./sleep.ts";
import { classifyFetchError, isFailure, isGatewayError, isRetriable, mayRetryMethod, nextRetryWait, type TryOutcome } from "./retry.ts";

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

export interface ProxyRequest {
  snapshot: ServiceSnapshot;
  route: CompiledRoute;
  /** The chosen subset's members (indexes into snapshot.endpoints). */
  members: readonly number[];
  method: string;
  url: URL;
  /** The headers to send upstream (the sidecar's own x-edgemesh-* already taken off). */
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
  result.response?.body?.cancel().catch(() => {});
}

/** Starts one try to `index`, answering by `timeoutMs` at the latest; cancellable (hedging). */
function startTry(req: ProxyRequest, state: ResilienceState, index: number, timeoutMs: number): RunningTry<TryResult> {
  const endpoint = req.snapshot.endpoints[index]!;
  const controller = new AbortController();
  let stop: (why: "timeout" | "cancelled") => void = () => {};
  const stopped = new Promise<"timeout" | "cancelled">((resolve) => (stop = resolve));
  const timer = setTimeout(() => stop("timeout"), timeoutMs);
  const fault = req.faultTargeted && req.route.fault ? decideFault(req.route.fault, Math.random) : NO_FAULT;

  const base = { endpoint: index, error: "", lease: undefined };
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
    // Built before the try counts as started: a request that cannot be built never leaves a try in flight.
    const upstreamRequest = new Request(targetUrl(endpoint, req.url), { method: req.method, headers: tryHeaders(endpoint, req.headers, req.originHeaders), body: bodyForTry(req.body, req.method), redirect: "manual", signal: controller.signal });
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
      controller.abort("hedge lost");
      // The other try won, but this one had already taken this long: a lower bound of its
      // latency, so the balancer learns that the endpoint is slow.
      recordLatencyLowerBound(load, nowMs - startedMs, lb, nowMs);
      tryFinished(lease);
      discardLateAnswer(sent);
      return { ...base, outcome: { kind: "timeout" }, response: undefined, injected: false, error: "cancelled" };
    }
    let result: TryResult;
    if (first === "timeout") {
      controller.abort("per-try timeout");
      discardLateAnswer(sent);
      result = { ...base, outcome: { kind: "timeout" }, response: undefined, injected: false, error: `no response headers within ${timeoutMs} ms` };
    } else if ("response" in first) {
      result = { ...base, outcome: { kind: "response", status: first.response.status }, response: first.response, injected: false, lease };
    } else {
      const message = first.err instanceof Error ? first.err.message : String(first.err);
      result = { ...base, outcome: { kind: classifyFetchError(first.err) }, response: undefined, injected: false, error: message };
    }
    // A try without a response is over; one with a response stays in flight until its body is.
    if (!result.lease) tryFinished(lease);
    const failed = isFailure(result.outcome);
    recordLatency(load, nowMs - startedMs, failed, lb, nowMs);
    const outlierOutcome = !failed ? "success" : isGatewayError(result.outcome) ? "gateway-error" : "5xx";
    recordOutlierOutcome(state.outliers, req.snapshot.outlierDetection, endpoint.id, outlierOutcome, req.snapshot.endpoints.length, nowMs);
    req.onTryEnded?.(endpoint.id, failed, nowMs - startedMs);
    return result;
  };
  // A try always answers: anything thrown becomes a connect failure naming the error.
  const result = run()
    .catch((err: unknown): TryResult => {
      const message = err instanceof Error ? err.message : String(err);
      return { ...base, outcome: { kind: "connect-failure" }, response: undefined, injected: false, error: message };
    })
    .finally(() => clearTimeout(timer));
  return { result, cancel: () => stop("cancelled") };
}

// Error bodies name what happened and which route, never raw exception text: the client may be anyone.
function routeTimeout(req: ProxyRequest): Response {
  return meshError(504, "x-edgemesh-timeout", "route-timeout", { route: req.route.name, timeoutMs: req.route.timeoutMs });
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
  const deadlineMs = req.startedMs + route.timeoutMs;
  const replayable = isReplayable(req.body) && mayRetryMethod(retry, req.method);
  const maxTries = replayable ? 1 + retry.attempts : 1;
  const tried: number[] = [];
  let hedged = false;
  // Counted now, not when the request arrived: a late record must not land in a bucket the budget
  // has already moved past (budget.ts also refuses to move backwards).
  recordRequest(state.budget, budgetCfg, Date.now());
  realign(state, snapshot);
  const stopped = (response: Response, endpoint: number, retryStoppedBy: string, errorDetail: string): ProxyResult =>
    ({ response, endpoint, tries: tried.length, hedged, retryStoppedBy, lease: undefined, errorDetail });

  for (let n = 0; ; n++) {
    const nowMs = Date.now();
    // Past the deadline nothing is sent: the client is told 504, so the upstream must not act on it.
    if (nowMs >= deadlineMs) return stopped(routeTimeout(req), -1, n > 0 ? "deadline" : "", "");
    const index = pick(req, state, tried, nowMs, maxTries > 1);
    if (index < 0) return stopped(meshError(503, "x-edgemesh-error", "no-endpoint", { route: route.name }), -1, "", "");
    tried.push(index);
    const remainingMs = deadlineMs - nowMs;
    const tryTimeoutMs = retry.perTryTimeoutMs > 0 ? Math.min(retry.perTryTimeoutMs, remainingMs) : remainingMs;
    const first = startTry(req, state, index, tryTimeoutMs);
    let result: TryResult;
    if (route.hedge && replayable && route.hedge.afterMs < tryTimeoutMs && tried.length < maxTries) {
      const outcome = await hedge(
        first,
        route.hedge.afterMs,
        () => {
          const now = Date.now();
          const hedgeTimeoutMs = Math.min(tryTimeoutMs, deadlineMs - now);
          if (tried.length >= maxTries || hedgeTimeoutMs <= 0) return undefined;
          const other = pick(req, state, tried, now, false);
          if (other < 0 || tried.includes(other) || !withdrawRetry(state.budget, budgetCfg, now)) return undefined;
          tried.push(other);
          return startTry(req, state, other, hedgeTimeoutMs);
        },
        (r) => !isRetriable(retry, r.outcome),
        discard,
      );
      result = outcome.value;
      hedged ||= outcome.hedged;
    } else result = await first.result;

    const done = (retryStoppedBy: string): ProxyResult => ({
      response: finalResponse(req, result, deadlineMs), endpoint: result.endpoint, tries: tried.length, hedged, retryStoppedBy, lease: result.lease, errorDetail: result.error,
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
