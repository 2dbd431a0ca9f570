// Staged rollouts: a service's `rollout` moves traffic from a stable subset to a canary subset in
// steps, judging the canary by its telemetry over each interval. The control plane runs it
// (durable/rollouts.ts): it owns the weights of the routes named here and writes a new policy
// version per step. schema.ts plugs `Rollout` into Service and calls `refineServiceRollout` for
// the rules that span the service (subsets, routes, telemetry). Pure.
import { z } from "zod";
import { policyRegexProblem } from "./regex.ts";

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** RFC 6265 cookie-octets: what a cookie value may hold without quoting. */
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+$/;
const MESH_HEADER_PREFIX = "x-edgemesh-";

export const MAX_ROLLOUT_STEPS = 100;
export const MAX_ROLLOUT_ROUTES = 16;
/** The name of the route a test audience takes to the canary, placed before the shaped route. */
export const AUDIENCE_ROUTE_SUFFIX = "-audience";

const subsetName = z.string().regex(NAME, 'a subset name, e.g. "v3"');

export const RolloutGates = z
  .object({
    minSuccessRate: z.number().min(0).max(1).default(0.99)
      .describe("The canary's share of requests answered below 500 over an interval must be at least this (0..1)."),
    maxP99Ms: z.number().int().min(1).max(300_000).optional()
      .describe("The canary's p99 latency over an interval must not exceed this; omitted: latency is not a gate."),
    minRequests: z.number().int().min(1).max(1_000_000_000).default(20)
      .describe("Requests the canary must have served in an interval for the interval to be judged; fewer is too little traffic (neither pass nor fail; see progressDeadlineMs)."),
  })
  .strict()
  .describe("What the canary must show over each interval, measured from telemetry (requests weighted by their sample interval).");

const AudienceHeader = z
  .object({
    name: z.string().min(1).max(256).regex(HEADER_NAME, "not a valid header name")
      .refine((n) => !n.toLowerCase().startsWith(MESH_HEADER_PREFIX), { message: "x-edgemesh-* headers belong to the mesh and are stripped from requests; pick another name" })
      .describe("The header that marks the test audience (case-insensitive)."),
    exact: z.string().max(1024).optional().describe("The value must equal this."),
    prefix: z.string().min(1).max(1024).optional().describe("The value must start with this."),
    regex: z.string().min(1).max(1024).optional().describe("The whole value must match this RE2 regular expression."),
    present: z.literal(true).optional().describe("Any value will do."),
  })
  .strict()
  .superRefine((h, ctx) => {
    const kinds = (["exact", "prefix", "regex", "present"] as const).filter((k) => h[k] !== undefined);
    if (kinds.length !== 1) ctx.addIssue({ code: "custom", message: `give exactly one of "exact", "prefix", "regex" or "present" (got ${kinds.length ? kinds.join(", ") : "none"})` });
    if (h.regex !== undefined) {
      const problem = policyRegexProblem(h.regex);
      if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["regex"], message: problem });
    }
  });

const AudienceCookie = z
  .object({
    name: z.string().min(1).max(256).regex(HEADER_NAME, "not a valid cookie name (letters, digits and !#$%&'*+.^_`|~-)").describe("The cookie's name."),
    value: z.string().min(1).max(256).regex(COOKIE_VALUE, "not a valid cookie value (no spaces, quotes, commas, semicolons or backslashes)").describe("The cookie's value, exactly."),
  })
  .strict();

export const RolloutAudience = z
  .object({
    header: AudienceHeader.optional().describe("Requests with this header (and value) see the canary."),
    cookie: AudienceCookie.optional().describe("Requests carrying this cookie with this value see the canary."),
  })
  .strict()
  .superRefine((a, ctx) => {
    if ((a.header === undefined) === (a.cookie === undefined)) ctx.addIssue({ code: "custom", message: 'give exactly one of "header" or "cookie"' });
  })
  .describe(`A test audience that sees the canary from the first step to the end of the rollout: for each shaped route the rollout adds a route "<route>${AUDIENCE_ROUTE_SUFFIX}" just before it, with the same matches plus this one, sending everything to the canary.`);

export const Rollout = z
  .object({
    stable: subsetName.describe("The subset that serves traffic now."),
    canary: subsetName.describe("The subset being rolled out."),
    routes: z.array(z.string().regex(NAME, "a route name")).min(1).max(MAX_ROLLOUT_ROUTES)
      .describe("The routes whose weights the rollout owns. Each must send to exactly the stable and the canary subset; the rollout sets their weights (canary percent, stable the rest)."),
    steps: z.array(z.number().int().min(1).max(100)).min(1).max(MAX_ROLLOUT_STEPS).optional()
      .describe("The canary's percent of traffic at each step, increasing, e.g. [5, 25, 50, 100]. Give this or stepWeight."),
    stepWeight: z.number().int().min(1).max(100).optional()
      .describe("Instead of steps: the canary's percent grows by this much each step, up to maxWeight."),
    maxWeight: z.number().int().min(1).max(100).default(100)
      .describe("With stepWeight: the last step's percent."),
    intervalMs: z.number().int().min(1_000).max(86_400_000).default(60_000)
      .describe("The window each check of the gates measures, and so the time between two checks; a passed check moves to the next step. Windows start on whole seconds."),
    gates: RolloutGates.prefault({}),
    maxFailedChecks: z.number().int().min(0).max(100).default(0)
      .describe("Failed checks tolerated over the whole rollout; one more rolls it back at once. 0: the first failed check rolls back."),
    audience: RolloutAudience.optional(),
    progressDeadlineMs: z.number().int().min(2_000).max(604_800_000).default(600_000)
      .describe("The longest a step may go without a passed check (too little traffic, a canary without a serving endpoint, telemetry that cannot be read, tolerated failures). Past it the rollout does what onProgressDeadline says, and says why. Checked at each check."),
    onProgressDeadline: z.enum(["fail", "hold"]).default("fail")
      .describe('"fail": traffic goes back to the stable subset and the rollout ends failed. "hold": the rollout pauses at its current weights until an operator resumes, promotes or aborts it.'),
    metricsDelayMs: z.number().int().min(0).max(600_000).default(2_000)
      .describe("How long telemetry takes to become queryable (sidecars flush in batches; Analytics Engine ingests with a delay): a check runs this long after its interval ends, so the rows of the interval are there."),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.steps === undefined && r.stepWeight === undefined) {
      ctx.addIssue({ code: "custom", message: 'give the canary\'s weights: "steps" (e.g. [5, 25, 50, 100]) or "stepWeight" (with "maxWeight")' });
    }
    if (r.steps !== undefined && r.stepWeight !== undefined) {
      ctx.addIssue({ code: "custom", path: ["stepWeight"], message: 'give either "steps" or "stepWeight", not both' });
    }
    r.steps?.forEach((w, i) => {
      if (i > 0 && w <= r.steps![i - 1]!) ctx.addIssue({ code: "custom", path: ["steps", i], message: `steps must increase: ${w} follows ${r.steps![i - 1]}` });
    });
    if (r.stepWeight !== undefined && r.stepWeight > r.maxWeight) {
      ctx.addIssue({ code: "custom", path: ["maxWeight"], message: `maxWeight (${r.maxWeight}) must be at least stepWeight (${r.stepWeight})` });
    }
    if (r.stable === r.canary) ctx.addIssue({ code: "custom", path: ["canary"], message: `the canary must be another subset than the stable one (both are "${r.stable}")` });
    const seen = new Set<string>();
    r.routes.forEach((name, i) => {
      if (seen.has(name)) ctx.addIssue({ code: "custom", path: ["routes", i], message: `route "${name}" is listed twice` });
      seen.add(name);
    });
    if (r.progressDeadlineMs <= r.intervalMs) {
      ctx.addIssue({ code: "custom", path: ["progressDeadlineMs"], message: `progressDeadlineMs (${r.progressDeadlineMs}) must be longer than intervalMs (${r.intervalMs}), or every step would miss it before its first check` });
    }
    if (r.metricsDelayMs >= r.intervalMs) {
      ctx.addIssue({ code: "custom", path: ["metricsDelayMs"], message: `metricsDelayMs (${r.metricsDelayMs}) must be shorter than intervalMs (${r.intervalMs})` });
    }
  })
  .describe("A staged rollout from the stable to the canary subset, run by the control plane: it owns the weights of `routes`, writes a policy version per step (author rollout:<service>), promotes the canary at the end and rolls back at once when the gates fail (docs/rollouts.md).");

export type RolloutPolicy = z.output<typeof Rollout>;
export type RolloutAudiencePolicy = z.output<typeof RolloutAudience>;

/** The canary's percent at each step. */
export function rolloutWeights(r: Pick<RolloutPolicy, "steps" | "stepWeight" | "maxWeight">): number[] {
  if (r.steps) return [...r.steps];
  const out: number[] = [];
  const step = r.stepWeight ?? r.maxWeight;
  for (let w = step; w < r.maxWeight; w += step) out.push(w);
  out.push(r.maxWeight);
  return out;
}

/** The name of the audience route placed before `route`. */
export const audienceRouteName = (route: string) => `${route}${AUDIENCE_ROUTE_SUFFIX}`;

const escapeRegex = (text: string) => text.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");

/** The header match (lower-case name and match) that picks out the audience's requests. */
export function audienceHeaderMatch(a: RolloutAudiencePolicy): { header: string; match: Record<string, unknown> } {
  if (a.header) {
    const { name, ...match } = a.header;
    return { header: name.toLowerCase(), match };
  }
  const { name, value } = a.cookie!;
  // Anywhere among the Cookie header's pairs, which are separated by "; ".
  return { header: "cookie", match: { regex: `(?:.*;\\s*)?${escapeRegex(name)}=${escapeRegex(value)}(?:;.*)?` } };
}

interface ServiceShape {
  subsets: Record<string, unknown>;
  routes: { name: string; match?: { headers?: Record<string, unknown> }[]; to: { subset: string }[] }[];
  telemetry: { enabled: boolean };
  rollout?: RolloutPolicy;
}

/** The rules of a rollout that span its service: subsets and routes exist and fit, telemetry is on. */
export function refineServiceRollout(svc: ServiceShape, ctx: z.RefinementCtx): void {
  const r = svc.rollout;
  if (!r) return;
  const subsets = Object.keys(svc.subsets);
  for (const key of ["stable", "canary"] as const) {
    if (!(r[key] in svc.subsets)) {
      ctx.addIssue({ code: "custom", path: ["rollout", key], message: `unknown subset "${r[key]}"; defined subsets: ${subsets.length ? subsets.join(", ") : "(none)"}` });
    }
  }
  if (!svc.telemetry.enabled) {
    ctx.addIssue({ code: "custom", path: ["telemetry", "enabled"], message: "a rollout judges the canary by its telemetry: telemetry.enabled must be true while the service has a rollout" });
  }
  const routeNames = new Set(svc.routes.map((route) => route.name));
  const audience = r.audience ? audienceHeaderMatch(r.audience) : undefined;
  r.routes.forEach((name, i) => {
    const route = svc.routes.find((x) => x.name === name);
    if (!route) {
      ctx.addIssue({ code: "custom", path: ["rollout", "routes", i], message: `unknown route "${name}"; routes: ${svc.routes.map((x) => x.name).join(", ") || "(none)"}` });
      return;
    }
    const sends = route.to.map((d) => d.subset).sort();
    const wanted = [r.stable, r.canary].sort();
    if (sends.length !== 2 || sends[0] !== wanted[0] || sends[1] !== wanted[1]) {
      ctx.addIssue({
        code: "custom",
        path: ["rollout", "routes", i],
        message: `route "${name}" must send to exactly the stable and the canary subset ("${r.stable}" and "${r.canary}") so the rollout can own its weights; it sends to: ${sends.join(", ") || "(nothing)"}`,
      });
    }
    if (!audience) return;
    const audienceName = audienceRouteName(name);
    if (audienceName.length > 63) {
      ctx.addIssue({ code: "custom", path: ["rollout", "routes", i], message: `the audience route "${audienceName}" would be longer than 63 characters; shorten route "${name}"` });
    }
    if (r.routes.includes(audienceName)) {
      ctx.addIssue({ code: "custom", path: ["rollout", "routes", i], message: `"${audienceName}" is the name of the audience route the rollout adds before "${name}"; it cannot be shaped itself` });
    } else if (routeNames.has(audienceName) && !svc.routes.some((x, j) => x.name === audienceName && svc.routes[j + 1]?.name === name)) {
      ctx.addIssue({ code: "custom", path: ["rollout", "routes", i], message: `a route named "${audienceName}" exists elsewhere; the rollout needs that name for the audience route before "${name}": rename it` });
    }
    if (route.match?.some((m) => Object.keys(m.headers ?? {}).some((h) => h.toLowerCase() === audience.header))) {
      ctx.addIssue({ code: "custom", path: ["rollout", "audience"], message: `route "${name}" already matches on header "${audience.header}"; the audience needs a header the route does not test` });
    }
  });
}
