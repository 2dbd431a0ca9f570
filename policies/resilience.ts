// The resilience knobs of the policy schema: retries, timeouts, hedging, fault injection and
// mirroring per route; load balancing, circuit breaking, outlier detection and the retry budget
// per service. Every knob has its default and limits here and nowhere else; schema.ts plugs these
// into Route and Service, compile.ts turns them into the snapshot's plain data.
import { z } from "zod";
import { GRPC_RETRY_CONDITIONS } from "./grpc.ts";
import { DEFAULT_STREAM_IDLE_TIMEOUT_MS } from "./snapshot.ts";

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const RETRY_CONDITIONS = ["5xx", "gateway-error", "connect-failure", "reset", ...GRPC_RETRY_CONDITIONS] as const;
export const DEFAULT_RETRY_ON: (typeof RETRY_CONDITIONS)[number][] = ["gateway-error", "connect-failure", "reset"];
export const DEFAULT_RETRY_ATTEMPTS = 2;
export const DEFAULT_MAX_BUFFER_BYTES = 64 * 1024;

export const Backoff = z
  .object({
    baseMs: z.number().int().min(1).max(10_000).default(25)
      .describe("Backoff before retry n is a random time in [0, min(maxMs, baseMs * 2^(n-1))] (full jitter). Default 25, 1-10000."),
    maxMs: z.number().int().min(1).max(60_000).default(250).describe("Cap of the exponential backoff. Default 250, 1-60000."),
    maxRetryAfterMs: z.number().int().min(0).max(60_000).default(1_000)
      .describe("A retriable response's Retry-After (seconds or HTTP date) replaces the backoff when it is at most this long and fits the route's deadline; a longer one ends the retries and the response is returned. Default 1000, 0-60000."),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.maxMs < b.baseMs) ctx.addIssue({ code: "custom", path: ["maxMs"], message: `maxMs (${b.maxMs}) must be at least baseMs (${b.baseMs})` });
  })
  .describe("Exponential backoff with full jitter between retries.");

export const RetryPolicy = z
  .object({
    attempts: z.number().int().min(0).max(10).default(DEFAULT_RETRY_ATTEMPTS)
      .describe("Retries after the first try (0 turns retries off). Default 2, 0-10."),
    perTryTimeoutMs: z.number().int().min(1).max(300_000).optional()
      .describe("Deadline of each try until response headers; a timed-out try may be retried inside the route's timeoutMs. Default: none (each try may use what is left of the route's deadline), 1-300000."),
    retryOn: z.array(z.enum(RETRY_CONDITIONS)).max(RETRY_CONDITIONS.length).default(DEFAULT_RETRY_ON)
      .describe('When to retry: "5xx" (any 5xx, timeout, connect failure or reset), "gateway-error" (502, 503, 504, timeout, connect failure, reset), "connect-failure", "reset"; for gRPC-Web and Connect calls also the gRPC status codes "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable" (listing one lets the route retry its RPCs, which are POSTs, without retryNonIdempotent). Default ["gateway-error", "connect-failure", "reset"].'),
    statusCodes: z.array(z.number().int().min(100).max(599)).max(32).default([])
      .describe("Further response statuses to retry, e.g. [409, 429]. Default none."),
    retryNonIdempotent: z.boolean().default(false)
      .describe("Also retry (and hedge) POST, PATCH and CONNECT. Default false: only GET, HEAD, OPTIONS, TRACE, PUT and DELETE are retried."),
    maxBufferBytes: z.number().int().min(0).max(16 * 1024 * 1024).default(DEFAULT_MAX_BUFFER_BYTES)
      .describe("Request bodies up to this size are buffered so they can be replayed; a larger body is streamed once and never retried, hedged or mirrored. Default 65536, 0-16777216."),
    backoff: Backoff.prefault({}),
  })
  .strict()
  .describe("Retries of one route. Omitted: 2 retries on gateway errors, connect failures and resets for idempotent methods.");

export const StreamIdleTimeoutMs = z.number().int().min(0).max(3_600_000).default(DEFAULT_STREAM_IDLE_TIMEOUT_MS)
  .describe("Longest time a response body may go without a chunk (after the response headers, and between chunks) before the sidecar aborts it, like Envoy's stream_idle_timeout; timeoutMs stops at the headers, this bounds the body. The client sees the body cut short. While the body streams, the request keeps its circuit-breaker slot and counts as in flight for the balancer. 0 turns body watching off: no idle limit, and a response counts only until its headers, which saves the cost of passing every body through the sidecar (tens of microseconds of CPU per request). Default 300000 (5 minutes), 0-3600000.");

export const Hedge = z
  .object({
    afterMs: z.number().int().min(1).max(60_000)
      .describe("When the first try has no response headers after this long, a second try goes to another endpoint; the first good response wins and the other try is cancelled. Required, 1-60000."),
  })
  .strict()
  .describe("Hedged requests (off unless given). Only for requests that may be retried; each hedge is counted against the retry budget.");

const FaultHeader = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, "not a valid header name"),
    value: z.string().optional().describe("The header must have exactly this value; omitted: any value."),
  })
  .strict();

export const Fault = z
  .object({
    delay: z
      .object({
        percent: z.number().min(0).max(100).describe("Share of tries delayed, 0-100."),
        ms: z.number().int().min(1).max(60_000).describe("Delay added before the try is sent, 1-60000; it counts against the per-try and route timeouts."),
      })
      .strict()
      .optional(),
    abort: z
      .object({
        percent: z.number().min(0).max(100).describe("Share of tries aborted, 0-100."),
        status: z.number().int().min(200).max(599).default(503).describe("Status the aborted try answers with instead of the upstream. Default 503."),
      })
      .strict()
      .optional(),
    onlyWithHeader: FaultHeader.optional().describe("Inject only into requests carrying this header, so testers can target themselves."),
    bypassRetries: z.boolean().default(false)
      .describe("false (default): faults are injected per try and the route keeps its retries and timeouts, so an aborted try is retried like a real failure. true: Istio's behaviour, the fault answers the request directly."),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (!f.delay && !f.abort) ctx.addIssue({ code: "custom", message: 'give "delay", "abort" or both' });
  })
  .describe("Fault injection. Injected faults never count towards outlier detection or latency estimates.");

export const Mirror = z
  .object({
    subset: z.string().regex(NAME).optional().describe("Mirror to this subset of the same service."),
    service: z.string().regex(NAME).optional().describe("Mirror to the endpoints of this other service of the mesh."),
    percent: z.number().min(0).max(100).default(100).describe("Share of requests mirrored. Default 100, 0-100."),
  })
  .strict()
  .superRefine((m, ctx) => {
    if ((m.subset === undefined) === (m.service === undefined)) ctx.addIssue({ code: "custom", message: 'give exactly one of "subset" or "service"' });
  })
  .describe("Shadow a share of requests in the background; the shadow's response is discarded and never delays or fails the real request. Requests whose body is not buffered (see retries.maxBufferBytes) are not mirrored.");

export const HashOn = z
  .object({
    header: z.string().min(1).optional(),
    cookie: z.string().min(1).optional(),
    query: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((h, ctx) => {
    const n = [h.header, h.cookie, h.query].filter((v) => v !== undefined).length;
    if (n !== 1) ctx.addIssue({ code: "custom", message: `give exactly one of "header", "cookie" or "query" (got ${n})` });
  })
  .describe("The request value consistent hashing keys on. Requests without it are balanced with p2c-ewma.");

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

export const LB_ALGORITHMS = ["p2c-ewma", "least-request", "round-robin", "weighted-random", "consistent-hash"] as const;

export const LoadBalancer = z
  .object({
    algorithm: z.enum(LB_ALGORITHMS).default("p2c-ewma")
      .describe('"p2c-ewma" (default): power of two choices on peak-EWMA latency times outstanding requests; "least-request": power of two choices on outstanding requests per weight; "round-robin"; "weighted-random"; "consistent-hash": Maglev on hashOn.'),
    hashOn: HashOn.optional(),
    maglevTableSize: z.number().int().min(7).max(131_071).default(65_537)
      .refine(isPrime, "maglevTableSize must be a prime number, e.g. 65537 or 4099")
      .describe("Size of the Maglev lookup table (a prime, much larger than the endpoint count). Default 65537."),
    ewmaDecayMs: z.number().int().min(100).max(600_000).default(10_000)
      .describe("Time constant of the peak-EWMA latency estimate. Default 10000, 100-600000."),
    errorPenaltyMs: z.number().int().min(0).max(60_000).default(250)
      .describe("A failed try (5xx, timeout, connect failure, reset) counts as at least this latency in the EWMA, so a fast-failing endpoint is not preferred. Default 250, 0-60000."),
    panicThresholdPercent: z.number().min(0).max(100).default(50)
      .describe("When fewer than this share of a subset's endpoints are available (not ejected, not unhealthy), all of them are used. Default 50, 0-100."),
    localityPreference: z.boolean().default(true)
      .describe("Prefer endpoints whose zone label equals the request's colo, when any of them is available. Default true."),
    zoneLabel: z.string().min(1).max(63).default("zone").describe('The endpoint label holding its zone. Default "zone".'),
  })
  .strict()
  .superRefine((lb, ctx) => {
    if (lb.algorithm === "consistent-hash" && !lb.hashOn) ctx.addIssue({ code: "custom", path: ["hashOn"], message: 'algorithm "consistent-hash" needs hashOn: { header | cookie | query }' });
    if (lb.algorithm !== "consistent-hash" && lb.hashOn) ctx.addIssue({ code: "custom", path: ["hashOn"], message: 'hashOn is only used with algorithm "consistent-hash"' });
  })
  .describe("How the sidecar picks an endpoint within a subset.");

export const CircuitBreaker = z
  .object({
    maxConcurrent: z.number().int().min(1).max(100_000).default(1024)
      .describe("Requests in flight to the service at once, per sidecar isolate. Default 1024, 1-100000."),
    maxPending: z.number().int().min(0).max(100_000).default(1024)
      .describe("Requests waiting for a free slot; more get a fast 503 with x-edgemesh-overloaded. Default 1024, 0-100000."),
  })
  .strict()
  .describe("Per-isolate circuit breaking for the service.");

export const OutlierDetection = z
  .object({
    consecutive5xx: z.number().int().min(0).max(1000).default(5)
      .describe("Consecutive 5xx responses (or failed tries) that eject an endpoint; 0 disables. Default 5, 0-1000."),
    consecutiveGatewayErrors: z.number().int().min(0).max(1000).default(3)
      .describe("Consecutive 502/503/504, timeouts, connect failures or resets that eject an endpoint; 0 disables. Default 3, 0-1000."),
    baseEjectionMs: z.number().int().min(10).max(3_600_000).default(30_000)
      .describe("An endpoint's n-th ejection lasts n * baseEjectionMs, up to maxEjectionMs. Default 30000, 10-3600000."),
    maxEjectionMs: z.number().int().min(10).max(3_600_000).default(300_000).describe("Cap of the ejection time. Default 300000, 10-3600000."),
    maxEjectionPercent: z.number().min(0).max(100).default(50)
      .describe("At most this share of the service's endpoints is ejected at once (at least one when above 0). Default 50, 0-100."),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.maxEjectionMs < o.baseEjectionMs) ctx.addIssue({ code: "custom", path: ["maxEjectionMs"], message: `maxEjectionMs (${o.maxEjectionMs}) must be at least baseEjectionMs (${o.baseEjectionMs})` });
  })
  .describe("Passive outlier detection per sidecar isolate. An ejected endpoint gets a single probe request once its ejection time is up; it is re-admitted only when the probe succeeds.");

export const RetryBudget = z
  .object({
    percent: z.number().min(0).max(1000).default(20).describe("Retries (and hedges) may add at most this share of the requests in the window. Default 20, 0-1000."),
    minRetriesPerSecond: z.number().min(0).max(10_000).default(3).describe("Retries always allowed per second regardless of traffic. Default 3, 0-10000."),
    windowMs: z.number().int().min(1000).max(60_000).default(10_000).describe("The sliding window the budget is counted over. Default 10000, 1000-60000."),
  })
  .strict()
  .describe("Retry budget per service and sidecar isolate, on by default: retries cannot amplify an outage.");

export type RetryPolicyInput = z.input<typeof RetryPolicy>;
