// Rate limits per service: requests per period with a burst, for all traffic or some routes and
// callers, counted as one bucket or one per caller, route and/or client IP. Each sidecar isolate
// enforces them with token buckets; a limit with `shared` is also counted across isolates by
// Cloudflare's rate limiting binding. schema.ts plugs `RateLimit` into Service; `compileRateLimits`
// turns them into the snapshot's plain data for workers/sidecar/ratelimit.ts.
import { z } from "zod";
import { CallerSelector, checkCallerNames, knownCallers, type MeshAccessPolicy, ANY_CALLER } from "./access.ts";
import type { CompiledRateLimit } from "./snapshot.ts";

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const BINDING = /^[A-Z_][A-Z0-9_]*$/;

export const MAX_RATE_LIMITS_PER_SERVICE = 32;
/** The periods Cloudflare's rate limiting binding supports, in ms. */
export const SHARED_PERIODS_MS = [10_000, 60_000] as const;
/** The route name of a service that has no routes (see compile.ts). */
const IMPLICIT_ROUTE = "default";

export const RATE_LIMIT_KEYS = ["caller", "route", "client-ip"] as const;

export const SharedRateLimit = z
  .object({
    binding: z.string().regex(BINDING, "a binding name is UPPER_SNAKE_CASE, e.g. RATE_LIMIT_REVIEWS")
      .describe("A `ratelimits` binding of the sidecar, configured with this limit's `requests` and period (`edgemesh deploy` generates it)."),
  })
  .strict()
  .describe("Also count this limit across all isolates of a Cloudflare location with the rate limiting binding; periodMs must be 10000 or 60000.");

export const RateLimit = z
  .object({
    name: z.string().regex(NAME, "a rate limit name is lowercase letters, digits and '-'").optional()
      .describe('Named in x-edgemesh-rate-limited as "<service>/<name>"; default "rateLimits[i]".'),
    routes: z.array(z.string().regex(NAME, "a route name")).min(1).max(256).optional()
      .describe('Routes of this service the limit applies to; omitted means every route ("default" when the service has none).'),
    callers: z.array(CallerSelector).min(1).max(256).optional().describe("Callers the limit applies to; omitted means every caller."),
    per: z.array(z.enum(RATE_LIMIT_KEYS)).max(3).default([])
      .describe('One bucket per distinct value of these: "caller", "route", "client-ip" (cf-connecting-ip). Empty: one bucket for all traffic the limit applies to.'),
    requests: z.number().int().min(1).max(1_000_000_000).describe("Requests allowed per period, per bucket."),
    periodMs: z.number().int().min(1_000).max(86_400_000).default(1_000).describe("The period of `requests`."),
    burst: z.number().int().min(1).max(1_000_000_000).optional()
      .describe("Bucket size: requests that may arrive at once after a quiet time; default `requests`."),
    shared: SharedRateLimit.optional(),
  })
  .strict()
  .superRefine((limit, ctx) => {
    const keys = new Set<string>();
    limit.per.forEach((k, i) => {
      if (keys.has(k)) ctx.addIssue({ code: "custom", path: ["per", i], message: `"${k}" is listed twice` });
      keys.add(k);
    });
    if (limit.shared && !(SHARED_PERIODS_MS as readonly number[]).includes(limit.periodMs)) {
      ctx.addIssue({ code: "custom", path: ["periodMs"], message: `a shared limit's period must be 10000 or 60000 ms (Cloudflare's rate limiting binding counts per 10 s or 60 s); got ${limit.periodMs}` });
    }
  })
  .describe("A token-bucket rate limit; a request over it gets 429 with Retry-After.");

export type RateLimitPolicy = z.output<typeof RateLimit>;

/** Service-level checks: unique names, routes that exist, one configuration per shared binding. */
export function refineServiceRateLimits(svc: { routes: { name: string }[]; rateLimits: RateLimitPolicy[] }, ctx: z.RefinementCtx): void {
  const routeNames = svc.routes.length ? svc.routes.map((r) => r.name) : [IMPLICIT_ROUTE];
  const names = new Map<string, number>();
  const bindings = new Map<string, number>();
  svc.rateLimits.forEach((limit, i) => {
    if (limit.shared) {
      // A binding is configured with one limit and period (wrangler's [[ratelimits]]).
      const first = bindings.get(limit.shared.binding);
      const other = first === undefined ? undefined : svc.rateLimits[first]!;
      if (other && (other.requests !== limit.requests || other.periodMs !== limit.periodMs)) {
        ctx.addIssue({ code: "custom", path: ["rateLimits", i, "shared", "binding"], message: `binding ${limit.shared.binding} is already used by rateLimits[${first}] with ${other.requests} requests per ${other.periodMs} ms; a binding has one limit and period, so give this limit its own binding` });
      } else if (first === undefined) bindings.set(limit.shared.binding, i);
    }
    if (limit.name !== undefined) {
      const first = names.get(limit.name);
      if (first !== undefined) ctx.addIssue({ code: "custom", path: ["rateLimits", i, "name"], message: `rate limit name "${limit.name}" is already used by rateLimits[${first}]` });
      else names.set(limit.name, i);
    }
    limit.routes?.forEach((route, j) => {
      if (!routeNames.includes(route)) {
        ctx.addIssue({ code: "custom", path: ["rateLimits", i, "routes", j], message: `unknown route "${route}"; routes of this service: ${routeNames.join(", ")}` });
      }
    });
  });
}

/** Document-level check: callers named in rate limits exist. */
export function refineRateLimitDocument(doc: { access: MeshAccessPolicy; services: Record<string, { rateLimits: RateLimitPolicy[] }> }, ctx: z.RefinementCtx): void {
  const known = knownCallers(doc);
  for (const [service, svc] of Object.entries(doc.services)) {
    svc.rateLimits.forEach((limit, i) => checkCallerNames(limit.callers, known, ctx, ["services", service, "rateLimits", i, "callers"]));
  }
}

export function compileRateLimits(service: string, limits: readonly RateLimitPolicy[]): CompiledRateLimit[] {
  return limits.map((limit, i) => {
    const compiled: CompiledRateLimit = {
      id: `${service}/${limit.name ?? `rateLimits[${i}]`}`,
      perCaller: limit.per.includes("caller"),
      perRoute: limit.per.includes("route"),
      perClientIp: limit.per.includes("client-ip"),
      requests: limit.requests,
      periodMs: limit.periodMs,
      burst: limit.burst ?? limit.requests,
    };
    if (limit.routes) compiled.routes = [...new Set(limit.routes)];
    if (limit.callers && !limit.callers.includes(ANY_CALLER)) compiled.callers = [...new Set(limit.callers)];
    if (limit.shared) compiled.shared = { binding: limit.shared.binding, limit: limit.requests, periodSeconds: limit.periodMs === 10_000 ? 10 : 60 };
    return compiled;
  });
}

/**
 * The rate limiting bindings a sidecar needs for its service's shared limits: binding name ->
 * the limit and period (s) to configure it with (wrangler `[[ratelimits]]` `simple`, Miniflare
 * `ratelimits`). The schema makes sure a binding named twice has one configuration.
 */
export function sharedLimitBindings(limits: readonly CompiledRateLimit[]): Record<string, { limit: number; period: 10 | 60 }> {
  const out: Record<string, { limit: number; period: 10 | 60 }> = {};
  for (const l of limits) if (l.shared) out[l.shared.binding] = { limit: l.shared.limit, period: l.shared.periodSeconds };
  return out;
}
