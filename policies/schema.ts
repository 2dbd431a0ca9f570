// The policy schema: the one definition of every knob, its default and its limits.
// The compiler, the JSON Schema for editors (`npm run schema`) and the docs all come from here.
import { z } from "zod";
import { CircuitBreaker, Fault, Hedge, LoadBalancer, Mirror, OutlierDetection, RetryBudget, RetryPolicy, StreamIdleTimeoutMs } from "./resilience.ts";
import { HealthCheck, PassiveHealth, Registration } from "./health.ts";
import { MeshAccess, refineAccessDocument, ServiceAccess } from "./access.ts";
import { MAX_RATE_LIMITS_PER_SERVICE, RateLimit, refineRateLimitDocument, refineServiceRateLimits } from "./ratelimit.ts";
import { GrpcMethodMatch } from "./grpc.ts";
import { checkRouteFilters, destinationFilterFields, routeFilterFields } from "./filters.ts";
import { Telemetry } from "./telemetry.ts";
import { refineServiceRollout, Rollout } from "./rollout.ts";
import { policyRegexProblem } from "./regex.ts";

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const BINDING = /^[A-Z_][A-Z0-9_]*$/;

export const MAX_ROUTES_PER_SERVICE = 256;
export const MAX_ENDPOINTS_PER_SERVICE = 1024;
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
export const DEFAULT_SNAPSHOT_TTL_MS = 1_000;

const name = (what: string) =>
  z.string().regex(NAME, `${what} must be lowercase letters, digits and '-', 1-63 characters, e.g. "reviews-v1"`);

export const StringMatch = z
  .object({
    exact: z.string().optional().describe("The value must equal this string."),
    prefix: z.string().min(1).optional().describe("The value must start with this string."),
    regex: z.string().min(1).max(1024).optional().describe("The whole value must match this regular expression (RE2 syntax, anchored; no backreferences or lookaround, so matching takes linear time)."),
  })
  .strict()
  .superRefine((m, ctx) => {
    const kinds = ["exact", "prefix", "regex"].filter((k) => m[k as keyof typeof m] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: "custom", message: `give exactly one of "exact", "prefix" or "regex" (got ${kinds.length ? kinds.join(", ") : "none"})` });
    }
    if (m.regex !== undefined) checkRegex(m.regex, ctx, ["regex"]);
  })
  .describe("How to match a string: exactly one of exact, prefix or regex.");

export const HeaderMatch = z
  .object({
    exact: z.string().optional().describe("The value must equal this string."),
    prefix: z.string().min(1).optional().describe("The value must start with this string."),
    regex: z.string().min(1).max(1024).optional().describe("The whole value must match this regular expression (RE2 syntax, anchored; no backreferences or lookaround, so matching takes linear time)."),
    present: z.boolean().optional().describe("true: the header (or query parameter) must be present, with any value; false: it must be absent."),
  })
  .strict()
  .superRefine((m, ctx) => {
    const kinds = ["exact", "prefix", "regex", "present"].filter((k) => m[k as keyof typeof m] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: "custom", message: `give exactly one of "exact", "prefix", "regex" or "present" (got ${kinds.length ? kinds.join(", ") : "none"})` });
    }
    if (m.regex !== undefined) checkRegex(m.regex, ctx, ["regex"]);
  })
  .describe("How to match a header or query parameter: exactly one of exact, prefix, regex or present.");

/** Policy regexes run on RE2 (policies/regex.ts): syntax it lacks is refused here, with the reason. */
function checkRegex(source: string, ctx: z.RefinementCtx, path: (string | number)[]): void {
  const problem = policyRegexProblem(source);
  if (problem !== undefined) ctx.addIssue({ code: "custom", path, message: problem });
}

const HTTP_METHOD = z.enum(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]);

export const RouteMatch = z
  .object({
    path: StringMatch.optional().describe("Match on the URL path (without the query string)."),
    methods: z.array(HTTP_METHOD).min(1).optional().describe("The request method must be one of these."),
    headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, "not a valid header name"), HeaderMatch).optional()
      .describe("Every listed header must match (names are case-insensitive)."),
    query: z.record(z.string().min(1), HeaderMatch).optional().describe("Every listed query parameter must match."),
    grpc: GrpcMethodMatch.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.path && m.grpc) ctx.addIssue({ code: "custom", path: ["grpc"], message: 'give either "path" or "grpc": a gRPC method match is a match on the path /service/method' });
  })
  .describe("All conditions in one match must hold; a route matches when any of its matches holds.");

export const Destination = z
  .object({
    subset: name("subset").describe("A subset of this service's endpoints, named in `subsets`."),
    weight: z.number().int().min(0).max(1_000_000).default(100).describe("Relative weight of this destination; weights need not sum to 100."),
    ...destinationFilterFields,
  })
  .strict();

export const Route = z
  .object({
    name: name("route name").describe("Unique within the service; named in x-edgemesh-route, telemetry and errors."),
    match: z.array(RouteMatch).max(64).optional().describe("Any one of these must match; omitted or empty matches every request."),
    to: z.array(Destination).max(64).default([])
      .describe("Where matching requests go, split by weight. Required (at least one) unless the route answers itself with `redirect` or `directResponse`."),
    timeoutMs: z.number().int().min(1).max(300_000).default(DEFAULT_ROUTE_TIMEOUT_MS)
      .describe("Deadline for the whole request until response headers arrive; a request past it gets 504."),
    streamIdleTimeoutMs: StreamIdleTimeoutMs,
    retries: RetryPolicy.prefault({}),
    hedge: Hedge.optional(),
    fault: Fault.optional(),
    mirror: Mirror.optional(),
    ...routeFilterFields,
  })
  .strict()
  .superRefine((route, ctx) => {
    checkRouteFilters(route, ctx);
    if (route.to.length > 0 && route.to.every((d) => d.weight === 0)) {
      ctx.addIssue({ code: "custom", path: ["to"], message: "at least one destination needs a weight above 0" });
    }
  });

export const Endpoint = z
  .object({
    id: name("endpoint id").describe("Unique within the service; named in x-edgemesh-endpoint, health and telemetry."),
    binding: z.string().regex(BINDING, "a binding name is UPPER_SNAKE_CASE, e.g. REVIEWS_V1").optional()
      .describe("A Worker service binding of the sidecar that reaches this endpoint."),
    url: z.url({ protocol: /^https?$/, error: "must be an absolute http(s) URL, e.g. https://reviews-v1.internal.example" }).optional()
      .describe("An origin URL; the request's path and query are appended."),
    labels: z.record(z.string().min(1).max(63), z.string().max(63)).default({}).describe("Labels such as version and zone, used by subsets."),
    weight: z.number().int().min(1).max(1000).default(1).describe("Relative share of traffic among the endpoints of a subset."),
  })
  .strict()
  .superRefine((e, ctx) => {
    if ((e.binding === undefined) === (e.url === undefined)) {
      ctx.addIssue({ code: "custom", message: 'give exactly one of "binding" or "url"' });
    }
  });

export const Service = z
  .object({
    endpoints: z.array(Endpoint).max(MAX_ENDPOINTS_PER_SERVICE).default([]).describe("Instances of this service declared in policy."),
    subsets: z.record(name("subset"), z.record(z.string().min(1), z.string())).default({})
      .describe("Named groups of endpoints: a subset holds the endpoints whose labels include all of these."),
    routes: z.array(Route).max(MAX_ROUTES_PER_SERVICE).default([])
      .describe("Ordered routes; the first that matches wins. With none, every request goes to all endpoints."),
    snapshotTtlMs: z.number().int().min(100).max(60_000).default(DEFAULT_SNAPSHOT_TTL_MS)
      .describe("How old a sidecar's snapshot may get before it revalidates it in the background."),
    registration: Registration.optional().describe("Lease settings for self-registered instances; without it a lease lasts 30 s unless the instance asks otherwise."),
    healthCheck: HealthCheck.optional().describe("Active health checks run by the control plane; omitted means none."),
    passiveHealth: PassiveHealth.optional().describe("Mesh-wide passive health from sidecar reports; omitted means off."),
    loadBalancer: LoadBalancer.prefault({}),
    circuitBreaker: CircuitBreaker.prefault({}),
    outlierDetection: OutlierDetection.prefault({}),
    retryBudget: RetryBudget.prefault({}),
    access: ServiceAccess.optional().describe("Who may call this service; omitted: the mesh's access defaults, no rules."),
    rateLimits: z.array(RateLimit).max(MAX_RATE_LIMITS_PER_SERVICE).default([]).describe("Every limit that applies to a request must admit it."),
    telemetry: Telemetry.prefault({}),
    rollout: Rollout.optional(),
  })
  .strict()
  .superRefine((svc, ctx) => {
    refineServiceRateLimits(svc, ctx);
    refineServiceRollout(svc, ctx);
    const seen = new Map<string, number>();
    svc.endpoints.forEach((e, i) => {
      const first = seen.get(e.id);
      if (first !== undefined) {
        ctx.addIssue({ code: "custom", path: ["endpoints", i, "id"], message: `endpoint id "${e.id}" is already used by endpoints[${first}]` });
      } else seen.set(e.id, i);
    });
    const routeNames = new Map<string, number>();
    svc.routes.forEach((r, i) => {
      const first = routeNames.get(r.name);
      if (first !== undefined) {
        ctx.addIssue({ code: "custom", path: ["routes", i, "name"], message: `route name "${r.name}" is already used by routes[${first}]` });
      } else routeNames.set(r.name, i);
      r.to.forEach((d, j) => {
        if (!(d.subset in svc.subsets)) {
          const known = Object.keys(svc.subsets);
          ctx.addIssue({
            code: "custom",
            path: ["routes", i, "to", j, "subset"],
            message: `unknown subset "${d.subset}"; defined subsets: ${known.length ? known.join(", ") : "(none)"}`,
          });
        }
      });
      if (r.mirror?.subset !== undefined && !(r.mirror.subset in svc.subsets)) {
        ctx.addIssue({ code: "custom", path: ["routes", i, "mirror", "subset"], message: `unknown subset "${r.mirror.subset}"; defined subsets: ${Object.keys(svc.subsets).join(", ") || "(none)"}` });
      }
    });
  });

export const PolicyDocument = z
  .object({
    $schema: z.string().optional().describe("Path or URL of policy.schema.json, for editors; ignored by edgemesh."),
    mesh: name("mesh name").describe("The mesh this document configures."),
    description: z.string().max(1000).optional().describe("Free text for operators."),
    services: z.record(name("service name"), Service).describe("Every service of the mesh, by name."),
    access: MeshAccess.prefault({}),
  })
  .strict()
  .superRefine((doc, ctx) => {
    refineAccessDocument(doc, ctx);
    refineRateLimitDocument(doc, ctx);
    for (const [service, svc] of Object.entries(doc.services)) {
      svc.routes.forEach((r, i) => {
        const target = r.mirror?.service;
        if (target !== undefined && !(target in doc.services)) {
          ctx.addIssue({ code: "custom", path: ["services", service, "routes", i, "mirror", "service"], message: `unknown service "${target}"; services: ${Object.keys(doc.services).join(", ")}` });
        }
      });
    }
  })
  .describe("An edgemesh policy document.");

export type PolicyDocumentInput = z.input<typeof PolicyDocument>;
export type PolicyDocument = z.output<typeof PolicyDocument>;
export type ServicePolicy = z.output<typeof Service>;
export type RoutePolicy = z.output<typeof Route>;
export type RouteMatchPolicy = z.output<typeof RouteMatch>;
export type HeaderMatchPolicy = z.output<typeof HeaderMatch>;

export interface PolicyError {
  /** JSON path of the offending field, e.g. `$.services.reviews.routes[0].to[0].subset`. */
  path: string;
  message: string;
}

export type ValidationResult =
  | { ok: true; document: PolicyDocument }
  | { ok: false; errors: PolicyError[] };

export function jsonPath(path: readonly PropertyKey[]): string {
  let out = "$";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** Validates a whole document, returning every error with its JSON path, never only the first. */
export function validatePolicy(input: unknown): ValidationResult {
  const parsed = PolicyDocument.safeParse(input);
  if (parsed.success) return { ok: true, document: parsed.data };
  const errors = parsed.error.issues.map((issue) => ({ path: jsonPath(issue.path), message: issue.message }));
  return { ok: false, errors };
}

/** JSON Schema of the policy document, for editors and the admin API's `/v1/schema`. */
export function policyJsonSchema(): unknown {
  return z.toJSONSchema(PolicyDocument, { io: "input", unrepresentable: "any" });
}
