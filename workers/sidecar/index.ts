// The sidecar: one per service, the same code for every service. This file only composes the
// pipeline stages; each stage is its own module with its own tests. Its public face is `fetch`;
// the control plane reaches it on the `SidecarControl` entrypoint (probes, debug views), which
// only a service binding can reach.
import { WorkerEntrypoint } from "cloudflare:workers";
import { DEFAULT_STREAM_IDLE_TIMEOUT_MS, type CompiledRoute, type MeshControlRpc } from "../../policies/snapshot.ts";
import type { BindingProbe, ProbeAnswer, SidecarControlRpc, SidecarDebugView } from "../../policies/sidecar-control.ts";
import { DEFAULT_RELAY_SHARDS, relayName, relayRegion, relayShard, type RelayRegion, type RequestPlace } from "../../policies/distribution.ts";
import { allLoads, extendTry, hashKeyOf, reclaimedTries, reclaimExpiredTries, tryFinished, type TryLease } from "./balance.ts";
import { methodAllowsBody, planBody, type BodyPlan } from "./body.ts";
import { activeSlots, admit, newBreaker, reclaimBreaker, release } from "./breaker.ts";
import { budgetStatus, newRetryBudget } from "./budget.ts";
import { decideFault, faultApplies, faultResponse } from "./fault.ts";
import { tryHeaders, upstreamFor } from "./forward.ts";
import { answerWithoutForwarding, shapeResponse, shapeUpstream } from "./filters.ts";
import { withoutMeshHeaders } from "./headers.ts";
import { extendLease, LEASE_GRACE_MS, type Lease } from "./lease.ts";
import { mirrorStats, pickMirrorEndpoint, sendShadow, shouldMirror } from "./mirror.ts";
import { outlierReport } from "./outlier.ts";
import { newResilienceState, proxy, type ProxyResult, type RpcRequest } from "./proxy.ts";
import { mayRetryMethod } from "./retry.ts";
import { matchRoute, type RequestFacts } from "./match.ts";
import { DEBUG_HEADER, isNullBodyStatus, meshError } from "./responses.ts";
import { currentSnapshot, snapshotStatus, type SnapshotSource } from "./snapshot-cache.ts";
import { pickSubset } from "./split.ts";
import { sleep } from "./sleep.ts";
import { probeBinding } from "./probe.ts";
import { recordOutcome } from "./report.ts";
import { callerName, identityRefusedResponse } from "../../auth/identity.ts";
import { TOKEN_HEADER } from "../../auth/verify.ts";
import { accessDeniedBy, accessDeniedResponse, hasAccessRules } from "./access.ts";
import { bindingCallerOf, debugCredentialValid, forwardedToken, identify, identityStatus, type IdentityEnv } from "./identity.ts";
import { hasRateLimits, hasSharedLimits, newRateLimiterState, rateLimitedResponse, rateLimiterStatus, takeLocal, takeShared } from "./ratelimit.ts";
import { startTrace, type RequestTrace } from "./telemetry.ts";
import { recordRequest, telemetryStatus } from "./telemetry-recorder.ts";
import type { TelemetryEnv } from "./telemetry-sink.ts";
import { bytesOf, continueBody, unsizedBody, type BodyCut, type BodyWatch } from "./stream.ts";
import { GrpcCode } from "./grpc/codes.ts";
import { requestedTimeout, rpcDeadline } from "./grpc/deadline.ts";
import { grpcNativeUnsupported, isPlainMeshError, meshErrorCode, toCallerProtocol } from "./grpc/errors.ts";
import { finalStatus } from "./grpc/inspect.ts";
import { detectRpc, type RpcCall } from "./grpc/protocol.ts";

export interface SidecarEnv extends TelemetryEnv, IdentityEnv {
  SERVICE_NAME: string;
  MESH_NAME: string;
  MESH_CONTROL: DurableObjectNamespace;
  /** TTL used until the first snapshot says its own (ms). */
  SNAPSHOT_TTL_MS?: string;
  /** How long a cold isolate waits for the control plane (ms). */
  COLD_SNAPSHOT_TIMEOUT_MS?: string;
  /** The distribution tier's relays (MeshRelay); without it check-ins go to MESH_CONTROL. */
  MESH_RELAY?: DurableObjectNamespace;
  /** Relays per region (default 4); the same on every sidecar of a service. */
  EDGEMESH_RELAY_SHARDS?: string;
}

/** Where the debug endpoints were; the prefix stays reserved, answered 404 (see SidecarControl). */
const RETIRED_DEBUG_PREFIX = "/__edgemesh/";

// Per-isolate resilience state of this sidecar's service: plain data, never I/O objects.
const resilience = newResilienceState(newRetryBudget());
const breaker = newBreaker();
const rateLimiter = newRateLimiterState();
/** Requests that ended in sidecar-internal-error since the isolate started: each one a bug. */
let internalErrors = 0;
/**
 * Endpoint answers since the isolate started, by how their body went out: whole (read before
 * answering), streamed (watched as it came), unwatched (the route's streamIdleTimeoutMs is 0) or
 * empty (no body). What watching bodies costs depends on the share streamed (stream.ts).
 */
const bodies = { whole: 0, streamed: 0, unwatched: 0, empty: 0 };

// Built once per env (the same object for every request of an isolate), not per request. It holds
// the namespace binding, never a stub: a stub is made inside the request that uses it.
let source: SnapshotSource | undefined;
let sourceEnv: SidecarEnv | undefined;
/** Where this isolate runs, for its relay's location hint; an isolate never moves. */
let region: RelayRegion | undefined;

function sourceFor(env: SidecarEnv, place: RequestPlace | undefined): SnapshotSource {
  if (source === undefined || sourceEnv !== env) {
    sourceEnv = env;
    const src: SnapshotSource = {
      meshName: env.MESH_NAME,
      serviceName: env.SERVICE_NAME,
      control: () => controlFor(env, src),
      colo: "local",
      defaultTtlMs: Number(env.SNAPSHOT_TTL_MS ?? 1000),
      coldTimeoutMs: Number(env.COLD_SNAPSHOT_TIMEOUT_MS ?? 5000),
      shareInColo: env.MESH_RELAY !== undefined,
    };
    source = src;
  }
  if (typeof place?.colo === "string") source.colo = place.colo;
  region ??= relayRegion(place);
  return source;
}

/** The relay of this isolate's region and shard, or MeshControl itself without the tier. */
function controlFor(env: SidecarEnv, src: SnapshotSource): MeshControlRpc {
  if (!env.MESH_RELAY) return env.MESH_CONTROL.get(env.MESH_CONTROL.idFromName(env.MESH_NAME)) as unknown as MeshControlRpc;
  const hint = region ?? "enam";
  const name = relayName(env.MESH_NAME, hint, relayShard(env.SERVICE_NAME, src.colo, Number(env.EDGEMESH_RELAY_SHARDS ?? DEFAULT_RELAY_SHARDS)));
  return env.MESH_RELAY.get(env.MESH_RELAY.idFromName(name), { locationHint: hint }) as unknown as MeshControlRpc;
}

/** One debug view of this isolate, as plain data (SidecarControl.debugView). */
function debugView(view: SidecarDebugView, env: SidecarEnv): unknown {
  switch (view) {
    case "status": {
      const s = snapshotStatus();
      return {
        service: env.SERVICE_NAME,
        mesh: env.MESH_NAME,
        isolateId: s.isolateId,
        snapshot: s.loaded
          ? { policyVersion: s.loaded.snapshot.policyVersion, generation: s.loaded.snapshot.generation, source: s.loaded.source, checkedAtMs: s.loaded.checkedAtMs }
          : null,
        revalidations: s.revalidations,
        failures: s.failures,
        lastError: s.lastError ?? null,
      };
    }
    case "telemetry":
      return telemetryStatus();
    case "snapshot":
      return snapshotStatus().loaded?.snapshot ?? null;
    case "outliers":
      return outlierReport(resilience.outliers, Date.now());
    case "resilience": {
      const snapshot = snapshotStatus().loaded?.snapshot;
      const nowMs = Date.now();
      // What vanished requests left behind is given back first, so the counts are the live ones.
      reclaimBreaker(breaker, nowMs);
      reclaimExpiredTries(nowMs);
      return {
        breaker: { active: activeSlots(breaker), pending: breaker.pending, rejectedPending: breaker.rejectedPending, reclaimedSlots: breaker.slots.reclaimed },
        retryBudget: snapshot ? budgetStatus(resilience.budget, snapshot.retryBudget, nowMs) : null,
        endpointLoads: Object.fromEntries(allLoads()),
        reclaimedTries: reclaimedTries(),
        mirror: mirrorStats,
        bodies,
        internalErrors,
      };
    }
    case "security":
      return { identity: identityStatus(), rateLimits: rateLimiterStatus(rateLimiter), tokenKeysConfigured: Boolean(env.EDGEMESH_TOKEN_KEYS) };
    default:
      throw new Error(`unknown debug view "${String(view)}"`);
  }
}

/**
 * The control plane's door into the sidecar: a named entrypoint, reachable only over a service
 * binding (the control Worker's SIDECAR_<SERVICE>, `entrypoint = "SidecarControl"`), never from
 * the internet, so it needs no credential and the sidecar holds none that could change policy.
 */
export class SidecarControl extends WorkerEntrypoint<SidecarEnv> implements SidecarControlRpc {
  /** A health check of one of this sidecar's binding endpoints (probe.ts). */
  async probe(probe: BindingProbe): Promise<ProbeAnswer> {
    return probeBinding(probe, this.env as unknown as Record<string, unknown>);
  }

  async debugView(view: SidecarDebugView): Promise<unknown> {
    return debugView(view, this.env);
  }
}

/**
 * What a request holds from admission on: its breaker slot and, once answered by an endpoint, that
 * try. Given back when the response body is done: at once when the whole body was read before
 * answering (stream.ts), else when the watched stream ends or is cut, or when the client
 * disconnects while it streams: workerd then runs none of the request's code again (no stream
 * cancel, no timer, no pending continuation) but does fire request.signal (compatibility flag
 * enable_request_signal). If neither ever happens (a client that left before the response went
 * out), both leases expire on their own. Giving back twice is harmless.
 *
 * While an RPC's answer streams, it also carries the call's status reader: fed every chunk, read
 * at the end, and the status goes to outlier detection and passive health (a stream's status is
 * only known then) and to telemetry.
 */
class RequestHold implements BodyWatch, EventListenerObject {
  slot: Lease | undefined;
  lease: TryLease | undefined;
  /** Set while a body streams: the records that wait for its end. */
  private trace: RequestTrace | undefined;
  private result: ProxyResult | undefined;
  private finished: (() => void) | undefined;

  /** Gives back the slot and the try (both, once). */
  release(): void {
    if (this.slot) release(breaker, this.slot, Date.now());
    if (this.lease) tryFinished(this.lease);
    this.slot = undefined;
    this.lease = undefined;
  }

  /**
   * The answer's body streams through `continueBody` with this as its watch. `keepAccounting`:
   * the slot and the try stay held until the body is done (the route watches bodies).
   */
  follow(result: ProxyResult, trace: RequestTrace, keepAccounting: boolean, recordAtEnd: boolean): void {
    this.result = result;
    this.trace = trace;
    if (!keepAccounting) this.release();
    if (recordAtEnd) trace.finished = new Promise<void>((resolve) => (this.finished = resolve));
  }

  onChunk(chunk: Uint8Array): void {
    this.result!.rpc?.push(chunk);
    this.trace!.responseBytes += chunk.byteLength;
  }

  keepUntil(aliveUntilMs: number): void {
    const expiresAtMs = aliveUntilMs + LEASE_GRACE_MS;
    if (this.slot) extendLease(this.slot, expiresAtMs);
    if (this.lease) extendTry(this.lease, expiresAtMs);
  }

  onDone(cut: BodyCut | undefined, reason: unknown): void {
    this.release();
    const result = this.result;
    const trace = this.trace!;
    if (cut !== undefined) trace.responseBytes = -1;
    if (result?.rpc === undefined) {
      this.finished?.();
      return;
    }
    void finalStatus(result.rpc, cut, reason).then((status) => {
      result.pendingOutcome?.record(result.response.status, status);
      trace.rpcCode = status.code;
      this.finished?.();
    });
  }

  /** The client disconnected while the body streamed. */
  handleEvent(): void {
    this.onDone("client", "client disconnected");
  }
}

/**
 * Turns the proxy's result into the client's response: the upstream's x-edgemesh-* headers taken
 * off, the route's response header modifiers applied, the debug headers added when asked for with
 * the admin token. A body that was read whole is answered from memory and the request gives back
 * what it holds at once; one still arriving goes out watched until it ends (stream.ts).
 */
/** The route's stream idle timeout; snapshots compiled before the knob existed have none (0 is a value: off). */
function streamIdleTimeoutOf(route: CompiledRoute): number {
  return route.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
}

function respond(request: Request, result: ProxyResult, hold: RequestHold, route: CompiledRoute, subset: string, debug: DebugInfo | undefined, trace: RequestTrace): Response {
  const upstream = result.response;
  hold.lease = result.lease;
  // A WebSocket (101) is handed over as it is; nothing more to count once it is established.
  if (upstream.webSocket) {
    hold.release();
    return upstream;
  }
  // An answer the sidecar made itself (an error, an injected fault).
  if (result.lease === undefined) {
    hold.release();
    return decorate(shapeResponse(upstream, route.filters, subset), result, debug);
  }
  if (result.rpcStatus !== undefined) trace.rpcCode = result.rpcStatus.code;
  const headers = withoutMeshHeaders(upstream.headers);
  const start = result.body;
  let body: BodyInit | null;
  if (start === undefined) {
    // Not read: no body, or the route does not watch bodies (streamIdleTimeoutMs 0).
    if (upstream.body === null || isNullBodyStatus(upstream.status)) bodies.empty++;
    else bodies.unwatched++;
    hold.release();
    if (debug === undefined && headers === upstream.headers && route.filters === undefined) return upstream;
    body = isNullBodyStatus(upstream.status) ? null : upstream.body;
  } else if (start.complete) {
    bodies.whole++;
    hold.release();
    trace.responseBytes = start.headBytes;
    const bytes = bytesOf(start);
    body = trace.rpc?.protocol === "grpc-web" || trace.rpc?.protocol === "grpc-web-text" ? unsizedBody(bytes) : bytes;
  } else {
    // Snapshots compiled before the knob existed have no streamIdleTimeoutMs (0 is a value: off).
    const idleTimeoutMs = streamIdleTimeoutOf(route);
    bodies.streamed++;
    trace.responseBytes = start.headBytes;
    hold.follow(result, trace, idleTimeoutMs > 0, result.rpc !== undefined || trace.countStreamedBytes);
    // Only a disconnect while the body streams needs it: before, the request's code keeps running.
    if (idleTimeoutMs > 0) request.signal.addEventListener("abort", hold, { once: true });
    body = continueBody(start, idleTimeoutMs, hold);
  }
  // The upstream's own headers are copied straight from it (cheaper than a new init object).
  const response = headers === upstream.headers ? new Response(body, upstream) : new Response(body, { status: upstream.status, statusText: upstream.statusText, headers });
  return decorate(shapeResponse(response, route.filters, subset), result, debug);
}

interface DebugInfo {
  service: string;
  route: string;
  subset: string;
  caller: string;
  endpointIds: readonly { id: string }[];
  policyVersion: number;
  generation: number;
}

function decorate(response: Response, result: ProxyResult, debug: DebugInfo | undefined): Response {
  if (debug === undefined) return response;
  const h = response.headers;
  h.set("x-edgemesh-service", debug.service);
  h.set("x-edgemesh-route", debug.route);
  h.set("x-edgemesh-subset", debug.subset);
  h.set("x-edgemesh-endpoint", result.endpoint >= 0 ? debug.endpointIds[result.endpoint]!.id : "");
  h.set("x-edgemesh-attempts", String(result.tries));
  h.set("x-edgemesh-caller", debug.caller);
  if (result.hedged) h.set("x-edgemesh-hedged", "1");
  if (result.retryStoppedBy) h.set("x-edgemesh-retry-stopped-by", result.retryStoppedBy);
  // What went wrong, for the operator who asked (never in the body: clients may be anyone).
  if (result.errorDetail) h.set("x-edgemesh-error-detail", result.errorDetail.replace(/[^\x20-\x7e]+/g, " ").slice(0, 200));
  h.set("x-edgemesh-snapshot-version", String(debug.policyVersion));
  h.set("x-edgemesh-snapshot-generation", String(debug.generation));
  return response;
}

async function handle(request: Request, env: SidecarEnv, ctx: ExecutionContext, trace: RequestTrace): Promise<Response> {
  const props: unknown = ctx.props;
  const url = new URL(request.url);
  if (url.pathname.startsWith(RETIRED_DEBUG_PREFIX)) {
    trace.enabled = false;
    return meshError(404, "x-edgemesh-error", "not-found", { detail: "a sidecar's debug views are in the admin API: GET /v1/sidecars/<service>/debug/<view>" });
  }
  // gRPC-Web and Connect calls are recognised once, here; everything after knows the protocol.
  const call = detectRpc(request.method, url.pathname, url.search, request.headers);
  if (call !== undefined) {
    trace.rpc = call;
    // Native gRPC needs HTTP/2 trailers, which cannot pass a Worker: refused at once, in its own form.
    if (call.protocol === "grpc") {
      trace.rpcCode = GrpcCode.UNIMPLEMENTED;
      return grpcNativeUnsupported(call);
    }
  }

  const place = request.cf as RequestPlace | undefined;
  const colo = place?.colo as string | undefined;
  trace.colo = colo ?? "";
  const loaded = await currentSnapshot(sourceFor(env, place), (p) => ctx.waitUntil(p));
  if (!loaded) {
    // Why (the control plane's error, which may list the mesh's services) is in the status debug view.
    return meshError(503, "x-edgemesh-error", "no-snapshot", { detail: "this sidecar has no configuration yet; its control plane has not answered" });
  }
  const { snapshot } = loaded;
  if (snapshot.telemetry) {
    trace.enabled = snapshot.telemetry.enabled;
    trace.sampleInterval = snapshot.telemetry.sampleInterval;
    trace.countStreamedBytes = snapshot.telemetry.countStreamedBytes;
  }

  // Zero trust: who is calling (binding props, a verified token, or "external"), then whether they
  // may; a token is only verified when one is presented, and nothing here waits on the control plane.
  const identified = identify(request, props, loaded.identity, env);
  const identity = identified instanceof Promise ? await identified : identified;
  if (identity.kind === "refused") return identityRefusedResponse(identity);
  const caller = callerName(identity);
  trace.source = caller;
  if (hasAccessRules(loaded.access)) {
    const deniedBy = accessDeniedBy(loaded.access, caller, { method: request.method, path: url.pathname, headers: request.headers });
    if (deniedBy !== undefined) return accessDeniedResponse(deniedBy, caller);
  }

  const facts: RequestFacts = { method: request.method, path: url.pathname, headers: request.headers, query: () => url.searchParams };
  const matched = matchRoute(loaded.routes, facts);
  if (!matched) return meshError(404, "x-edgemesh-no-route", "no-route-matched", { service: snapshot.service });
  const route = matched.route;
  trace.route = route.name;
  if (hasRateLimits(loaded.rateLimits, route.name)) {
    // The isolate's buckets first: an isolate already over a limit never waits on the binding.
    const limited = { route: route.name, caller, clientIp: request.headers.get("cf-connecting-ip") ?? "unknown" };
    const refusal = takeLocal(rateLimiter, loaded.rateLimits, limited, Date.now())
      ?? (hasSharedLimits(loaded.rateLimits, route.name) ? await takeShared(rateLimiter, loaded.rateLimits, limited, env as unknown as Record<string, unknown>) : undefined);
    if (refusal) return rateLimitedResponse(refusal);
  }
  // Redirects and direct responses answer here: nothing is forwarded, so nothing is admitted.
  const answered = answerWithoutForwarding(route.filters, request.method, url);
  if (answered) return answered;

  const startedMs = Date.now();
  // An RPC's deadline is its caller's timeout capped by the route's (grpc/deadline.ts).
  const rpc = call === undefined ? undefined : rpcRequestOf(call, request.headers, route.timeoutMs);
  const timeoutMs = rpc === undefined ? route.timeoutMs : rpc.timeoutMs;
  if (timeoutMs <= 0) return meshError(504, "x-edgemesh-timeout", "caller-deadline", { route: route.name, timeoutMs });
  const deadlineMs = startedMs + timeoutMs;
  const fault = route.fault;
  const faultTargeted = fault !== undefined && faultApplies(fault, request.headers);
  if (faultTargeted && fault!.bypassRetries) {
    // Istio's way, when the policy asks for it: the fault answers for the whole request.
    // The delay still counts against the route's deadline, never beyond it.
    const decision = decideFault(fault!, Math.random);
    if (decision.delayMs > 0) await sleep(Math.min(decision.delayMs, timeoutMs));
    if (Date.now() >= deadlineMs) {
      return meshError(504, "x-edgemesh-timeout", rpc?.callerDeadline ? "caller-deadline" : "route-timeout", { route: route.name, timeoutMs });
    }
    if (decision.abortStatus > 0) return faultResponse(decision.abortStatus);
  }

  const subset = pickSubset(route.split);
  const members = snapshot.subsets[subset] ?? [];
  trace.subset = subset;

  // Admission comes before reading the body: a refused request must cost nothing, and a queued
  // one must not hold a buffered body while it waits. The slot is the request's until its response
  // body is done, or until its deadline passes should the request vanish without giving it back.
  const slotDeadlineMs = deadlineMs + LEASE_GRACE_MS;
  const admission = admit(breaker, snapshot.circuitBreaker, startedMs, slotDeadlineMs);
  if (admission.kind === "rejected") {
    return meshError(503, "x-edgemesh-overloaded", admission.reason, { maxConcurrent: snapshot.circuitBreaker.maxConcurrent, maxPending: snapshot.circuitBreaker.maxPending });
  }
  const hold = new RequestHold();
  if (admission.kind === "queued") {
    // The wait for a slot is part of the route's deadline.
    const waitMs = Math.max(0, deadlineMs - Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const granted = await Promise.race([admission.granted, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), waitMs)))]);
    clearTimeout(timer);
    if (granted === undefined && admission.cancel()) {
      return meshError(503, "x-edgemesh-overloaded", "pending-timeout", { maxConcurrent: snapshot.circuitBreaker.maxConcurrent, waitedMs: waitMs });
    }
    hold.slot = granted ?? (await admission.granted);
  } else hold.slot = admission.slot;

  // x-edgemesh-debug reveals endpoints and versions: honoured only with a debug credential
  // (x-edgemesh-debug-token, from POST /v1/debug-tokens), which, as x-edgemesh-*, is not passed on.
  const debugAllowed = request.headers.get(DEBUG_HEADER) !== null && (await debugCredentialValid(request, loaded.identity, env));

  let result: ProxyResult;
  try {
    const bindings = env as unknown as Record<string, unknown>;
    // Only the sidecar speaks for the mesh: inbound x-edgemesh-* headers are taken off.
    let headers = withoutMeshHeaders(request.headers);
    let incoming = request.body;
    // A GET or HEAD sent with a body goes upstream without it (see body.ts).
    if (incoming && !methodAllowsBody(request.method)) {
      incoming = null;
      headers = new Headers(headers);
      headers.delete("content-length");
      headers.delete("transfer-encoding");
    }
    // Buffer the body only when something may replay it: a retry, a hedge or a mirror.
    const replayWanted = route.mirror !== undefined || ((route.retry.attempts > 0 || route.hedge !== undefined) && mayRetryMethod(route.retry, request.method, rpc !== undefined));
    const planned = !incoming ? { kind: "none" as const }
      : replayWanted ? await planBody(incoming, headers.get("content-length"), route.retry.maxBufferBytes, deadlineMs)
      : { kind: "stream" as const, stream: incoming };
    if (planned.kind === "failed") {
      hold.release();
      return planned.why === "too-slow"
        ? meshError(408, "x-edgemesh-timeout", "request-body-timeout", { route: route.name, timeoutMs })
        : meshError(400, "x-edgemesh-error", "request-body-incomplete", { route: route.name });
    }
    const body: BodyPlan = planned;
    if (body.kind === "buffered") trace.requestBytes = body.bytes.byteLength;
    // Header modifiers and rewrites of the route, then of the chosen destination.
    const upstream = shapeUpstream(route.filters, subset, url, headers);
    // Each try tells the upstream what is left of the caller's deadline: its own copy to set.
    if (rpc?.propagate) upstream.headers = new Headers(upstream.headers);
    // Origins get the caller's identity as a token they can verify; bindings know it from props.
    let originHeaders: Headers | undefined;
    if (loaded.urlSubsets.has(subset) || (route.mirror !== undefined && loaded.hasUrlEndpoints)) {
      const token = await forwardedToken(caller, loaded.identity, env);
      if (token !== undefined) (originHeaders = new Headers(upstream.headers)).set(TOKEN_HEADER, token);
    }

    // Shadows only for admitted requests, so shedding load also sheds its mirror traffic.
    if (route.mirror && shouldMirror(route.mirror, Math.random())) {
      if (body.kind === "stream") mirrorStats.skippedUnbuffered++;
      else {
        const shadowEndpoint = pickMirrorEndpoint(route.mirror);
        const target = upstreamFor(shadowEndpoint, bindings);
        if (typeof target === "string") mirrorStats.failed++;
        else ctx.waitUntil(sendShadow(target, shadowEndpoint, upstream.url, request.method, tryHeaders(shadowEndpoint, upstream.headers, originHeaders), body.kind === "buffered" ? body.bytes : null, route.timeoutMs));
      }
    }

    result = await proxy(
      {
        snapshot, route, members, env: bindings, url: upstream.url, body, startedMs, deadlineMs, headers: upstream.headers, originHeaders,
        // Nothing about it changes (no header taken off or modified, no rewrite, no body): sent as it came.
        original: upstream.headers === request.headers && upstream.url === url && body.kind === "none" && request.body === null ? request : undefined,
        rpc,
        readBodies: streamIdleTimeoutOf(route) > 0,
        method: request.method,
        colo: colo ?? "",
        hashKey: hashKeyOf(snapshot.loadBalancer, request.headers, facts.query),
        faultTargeted: faultTargeted && !fault!.bypassRetries,
        // Passive health: counted here, sent to the control plane in a batch with the next check-in.
        onTryEnded: recordOutcome,
      },
      resilience,
    );
  } catch (err) {
    hold.release();
    throw err;
  }
  trace.endpoint = result.endpoint >= 0 ? snapshot.endpoints[result.endpoint]!.id : "";
  trace.attempts = result.tries;
  trace.hedged = result.hedged;
  trace.reason = result.retryStoppedBy;

  const debug: DebugInfo | undefined = debugAllowed
    ? { service: snapshot.service, route: route.name, subset, caller: trace.source, endpointIds: snapshot.endpoints, policyVersion: snapshot.policyVersion, generation: snapshot.generation }
    : undefined;
  return respond(request, result, hold, route, subset, debug, trace);
}

/** An RPC's deadline (its caller's timeout capped by the route's) and what the tries must do about it. */
function rpcRequestOf(call: RpcCall, headers: Headers, routeTimeoutMs: number): RpcRequest & { timeoutMs: number } {
  const deadline = rpcDeadline(requestedTimeout(call.protocol, headers), routeTimeoutMs);
  return { call, propagate: deadline.propagate, callerDeadline: deadline.setBy === "caller", timeoutMs: deadline.timeoutMs };
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    // Until identity is known (a refusal before it: no snapshot), the binding's caller or external.
    const trace = startTrace(request, bindingCallerOf(ctx.props), Date.now());
    let response: Response;
    try {
      response = await handle(request, env, ctx, trace);
    } catch (err) {
      // A broken request must never take the sidecar down. The error is for the operator's logs,
      // never for the client, who may be anyone.
      internalErrors++;
      console.error("edgemesh sidecar: internal error", err);
      response = meshError(500, "x-edgemesh-error", "sidecar-internal-error");
    }
    // Every answer the sidecar made itself reaches an RPC caller in its own protocol.
    if (trace.rpc !== undefined && isPlainMeshError(response)) {
      trace.rpcCode = meshErrorCode(response.status, response.headers).code;
      response = await toCallerProtocol(trace.rpc, response);
    }
    if (trace.enabled) return recordRequest(trace, response, env, ctx);
    // A stream's end still records the RPC's outcome for outlier detection (see RequestHold):
    // the invocation must last that long even when no telemetry waits for it.
    if (trace.finished !== undefined) ctx.waitUntil(trace.finished);
    return response;
  },
} satisfies ExportedHandler<SidecarEnv>;
