// Rate limits, after access control and before routing's work: token buckets per isolate (plain
// numbers in a module global, bounded: past `maxKeys` buckets the least recently used goes), and,
// for limits marked `shared`, Cloudflare's rate limiting binding, which counts across the isolates
// of a location. Local buckets are checked first, so an isolate that is already over a limit never
// waits on the binding. A request over any limit gets 429 with Retry-After.
import type { CompiledRateLimit } from "../../policies/snapshot.ts";

export const DEFAULT_MAX_TRACKED_KEYS = 10_000;

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export interface RateLimiterState {
  /** Bucket key -> bucket; Map order is least recently used first. */
  readonly buckets: Map<string, Bucket>;
  readonly maxKeys: number;
  evicted: number;
  refusedLocal: number;
  refusedShared: number;
  /** Shared checks that failed or had no binding: those requests were admitted (fail open). */
  sharedErrors: number;
}

export function newRateLimiterState(maxKeys = DEFAULT_MAX_TRACKED_KEYS): RateLimiterState {
  return { buckets: new Map(), maxKeys, evicted: 0, refusedLocal: 0, refusedShared: 0, sharedErrors: 0 };
}

interface PreparedLimit {
  limit: CompiledRateLimit;
  callers: ReadonlySet<string> | undefined;
  tokensPerMs: number;
}

export interface PreparedRateLimits {
  /** Route name -> the limits that apply to it, in policy order. */
  byRoute: Map<string, PreparedLimit[]>;
  /** For a route not in the snapshot: limits that name no routes. */
  everyRoute: PreparedLimit[];
}

/** Once per snapshot: each route's limits looked up ahead, so a request does no filtering. */
export function prepareRateLimits(limits: readonly CompiledRateLimit[], routeNames: readonly string[]): PreparedRateLimits {
  const prepared = limits.map((limit): PreparedLimit => ({
    limit,
    callers: limit.callers ? new Set(limit.callers) : undefined,
    tokensPerMs: limit.requests / limit.periodMs,
  }));
  const byRoute = new Map<string, PreparedLimit[]>();
  for (const route of routeNames) byRoute.set(route, prepared.filter((p) => !p.limit.routes || p.limit.routes.includes(route)));
  return { byRoute, everyRoute: prepared.filter((p) => !p.limit.routes) };
}

/** Whether any limit applies to this route, so a request on a route without limits skips the stage. */
export function hasRateLimits(prepared: PreparedRateLimits, route: string): boolean {
  return (prepared.byRoute.get(route) ?? prepared.everyRoute).length > 0;
}

export interface RateLimitRequest {
  route: string;
  /** The verified caller's name, or "external". */
  caller: string;
  /** cf-connecting-ip; "unknown" without one. */
  clientIp: string;
}

export interface RateLimitRefusal {
  /** "<service>/<limit>", for x-edgemesh-rate-limited. */
  limitId: string;
  retryAfterMs: number;
  source: "local" | "shared";
}

function applies(p: PreparedLimit, req: RateLimitRequest): boolean {
  return !p.callers || p.callers.has(req.caller);
}

/** The bucket's name: the limit, then only the parts it counts separately. */
function bucketKey(limit: CompiledRateLimit, req: RateLimitRequest): string {
  let key = limit.id;
  if (limit.perCaller) key += `\n${req.caller}`;
  if (limit.perRoute) key += `\n${req.route}`;
  if (limit.perClientIp) key += `\n${req.clientIp}`;
  return key;
}

function bucketFor(state: RateLimiterState, key: string, p: PreparedLimit, nowMs: number): Bucket {
  let bucket = state.buckets.get(key);
  if (bucket) {
    state.buckets.delete(key); // re-inserted: most recently used goes last
    bucket.tokens = Math.min(p.limit.burst, bucket.tokens + Math.max(0, nowMs - bucket.updatedMs) * p.tokensPerMs);
    bucket.updatedMs = nowMs;
  } else {
    while (state.buckets.size >= state.maxKeys) {
      state.buckets.delete(state.buckets.keys().next().value!);
      state.evicted++;
    }
    bucket = { tokens: p.limit.burst, updatedMs: nowMs };
  }
  state.buckets.set(key, bucket);
  return bucket;
}

// Tokens are fractions refilled by multiplication: compare with a tolerance, so 0.999999 after
// exactly one token's worth of time counts as a whole token.
const EPSILON = 1e-9;

// Buckets of one request between the check and the take; reused, since a check never awaits.
const scratch: Bucket[] = [];

/**
 * Takes a token from every local bucket that applies, or none when any is empty: then the refusal
 * names the first empty limit and the longest wait among them. Undefined means admitted.
 */
export function takeLocal(state: RateLimiterState, prepared: PreparedRateLimits, req: RateLimitRequest, nowMs: number): RateLimitRefusal | undefined {
  const limits = prepared.byRoute.get(req.route) ?? prepared.everyRoute;
  if (limits.length === 0) return undefined;
  let refusal: RateLimitRefusal | undefined;
  scratch.length = 0;
  for (const p of limits) {
    if (!applies(p, req)) continue;
    const bucket = bucketFor(state, bucketKey(p.limit, req), p, nowMs);
    if (bucket.tokens >= 1 - EPSILON) {
      scratch.push(bucket);
      continue;
    }
    const waitMs = Math.ceil((1 - bucket.tokens) / p.tokensPerMs - EPSILON);
    if (!refusal) refusal = { limitId: p.limit.id, retryAfterMs: waitMs, source: "local" };
    else if (waitMs > refusal.retryAfterMs) refusal.retryAfterMs = waitMs;
  }
  if (refusal) {
    state.refusedLocal++;
    scratch.length = 0;
    return refusal;
  }
  for (const bucket of scratch) bucket.tokens = Math.max(0, bucket.tokens - 1);
  scratch.length = 0;
  return undefined;
}

/** What Cloudflare's rate limiting binding offers (`ratelimits` in the wrangler config). */
export interface RateLimitBinding {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

function isRateLimitBinding(value: unknown): value is RateLimitBinding {
  return typeof value === "object" && value !== null && typeof (value as { limit?: unknown }).limit === "function";
}

/** Whether any limit of this route is shared, so a request with none skips the async step. */
export function hasSharedLimits(prepared: PreparedRateLimits, route: string): boolean {
  return (prepared.byRoute.get(route) ?? prepared.everyRoute).some((p) => p.limit.shared !== undefined);
}

/**
 * Asks the rate limiting binding of each shared limit that applies (in parallel). A missing
 * binding or a failing call admits the request and is counted: a broken limiter must not take
 * the service down. The binding does not say when its window ends, so Retry-After is its period.
 */
export async function takeShared(
  state: RateLimiterState,
  prepared: PreparedRateLimits,
  req: RateLimitRequest,
  bindings: Record<string, unknown>,
): Promise<RateLimitRefusal | undefined> {
  const limits = prepared.byRoute.get(req.route) ?? prepared.everyRoute;
  const checks: Promise<RateLimitRefusal | undefined>[] = [];
  for (const p of limits) {
    const shared = p.limit.shared;
    if (!shared || !applies(p, req)) continue;
    const binding = bindings[shared.binding];
    if (!isRateLimitBinding(binding)) {
      state.sharedErrors++;
      continue;
    }
    checks.push(
      binding.limit({ key: bucketKey(p.limit, req) }).then(
        (outcome): RateLimitRefusal | undefined => (outcome.success ? undefined : { limitId: p.limit.id, retryAfterMs: shared.periodSeconds * 1000, source: "shared" }),
        () => {
          state.sharedErrors++;
          return undefined;
        },
      ),
    );
  }
  if (checks.length === 0) return undefined;
  const outcomes = await Promise.all(checks);
  const refusal = outcomes.find((o) => o !== undefined);
  if (refusal) state.refusedShared++;
  return refusal;
}

/** The 429 a limited request gets: Retry-After in whole seconds, the limit named. */
export function rateLimitedResponse(refusal: RateLimitRefusal): Response {
  const retryAfterSeconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
  return new Response(JSON.stringify({ error: "rate-limited", limit: refusal.limitId, source: refusal.source, retryAfterSeconds }, null, 2) + "\n", {
    status: 429,
    headers: {
      "content-type": "application/json",
      "retry-after": String(retryAfterSeconds),
      "x-edgemesh-rate-limited": refusal.limitId,
      "x-edgemesh-generated": "1",
    },
  });
}

/** For the sidecar's debug endpoint. */
export function rateLimiterStatus(state: RateLimiterState): { trackedKeys: number; maxKeys: number; evicted: number; refusedLocal: number; refusedShared: number; sharedErrors: number } {
  return { trackedKeys: state.buckets.size, maxKeys: state.maxKeys, evicted: state.evicted, refusedLocal: state.refusedLocal, refusedShared: state.refusedShared, sharedErrors: state.sharedErrors };
}
