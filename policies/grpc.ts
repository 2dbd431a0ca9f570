// The gRPC knobs of the policy schema: matching a route on gRPC service and method (as Gateway
// API's GRPCRoute does) and retrying on gRPC status codes. schema.ts plugs GrpcMethodMatch into
// RouteMatch and resilience.ts adds GRPC_RETRY_CONDITIONS to retryOn; the compiler turns a method
// match into the path matcher every route already has, since an RPC's path is /service/method.
import { RE2JS } from "re2js";
import { z } from "zod";

/** A fully-qualified protobuf service name, as in the path: "edgemesh.example.v1.GreeterService". */
export const GRPC_SERVICE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** A protobuf method name: "Greet". */
export const GRPC_METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Every regex in a policy runs on a linear-time engine (RE2 semantics). Until the sidecar's
 * matcher moves to that engine it still compiles patterns with RegExp, so a pattern must compile
 * in both; the RegExp check can go when the move lands.
 */
export function regexProblem(source: string): string | undefined {
  try {
    RE2JS.compile(source);
  } catch (err) {
    return `not a valid RE2 regular expression: ${(err as Error).message}`;
  }
  try {
    new RegExp(source);
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  return undefined;
}

const nameMatch = (what: "service" | "method", pattern: RegExp, example: string) =>
  z
    .object({
      exact: z.string().max(1024).regex(pattern, `not a valid gRPC ${what} name, e.g. "${example}"`).optional()
        .describe(`The ${what} must be exactly this (case-sensitive), e.g. "${example}".`),
      regex: z.string().min(1).max(1024).optional()
        .describe(`The whole ${what} name must match this RE2 regular expression (anchored).`),
    })
    .strict()
    .superRefine((m, ctx) => {
      if ((m.exact === undefined) === (m.regex === undefined)) {
        ctx.addIssue({ code: "custom", message: `give exactly one of "exact" or "regex" for the ${what}` });
      }
      if (m.regex !== undefined) {
        const problem = regexProblem(m.regex);
        if (problem) ctx.addIssue({ code: "custom", path: ["regex"], message: problem });
      }
    });

export const GrpcMethodMatch = z
  .object({
    service: nameMatch("service", GRPC_SERVICE_NAME, "edgemesh.example.v1.GreeterService").optional()
      .describe("The fully-qualified service (package and service name); omitted: any service."),
    method: nameMatch("method", GRPC_METHOD_NAME, "Greet").optional().describe("The method; omitted: any method."),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (!m.service && !m.method) ctx.addIssue({ code: "custom", message: 'give "service", "method" or both' });
  })
  .describe("Match gRPC-Web and Connect calls by service and method (their path is /service/method), as a Gateway API GRPCRoute does. Not together with `path`.");

export type GrpcMethodMatchPolicy = z.output<typeof GrpcMethodMatch>;

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The path match a method match stands for: exact when both names are exact, a prefix for a whole
 * service, else a regex (a name left out matches one path segment). The result is what `path`
 * would say, so the compiler and the sidecar's matcher need nothing new.
 */
export function grpcPathMatch(m: GrpcMethodMatchPolicy): { exact: string } | { prefix: string } | { regex: string } {
  const service = m.service;
  const method = m.method;
  if (service?.exact !== undefined && method?.exact !== undefined) return { exact: `/${service.exact}/${method.exact}` };
  if (service?.exact !== undefined && method === undefined) return { prefix: `/${service.exact}/` };
  const part = (n: typeof service) => (n === undefined ? "[^/]+" : n.exact !== undefined ? escapeRegex(n.exact) : `(?:${n.regex})`);
  return { regex: `/${part(service)}/${part(method)}` };
}

/** retryOn entries for gRPC status codes, as Envoy's and Istio's retryOn name them. */
export const GRPC_RETRY_CONDITIONS = ["cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"] as const;
export type GrpcRetryCondition = (typeof GRPC_RETRY_CONDITIONS)[number];

const GRPC_CODE_OF_CONDITION: Record<GrpcRetryCondition, number> = {
  cancelled: 1,
  "deadline-exceeded": 4,
  "resource-exhausted": 8,
  internal: 13,
  unavailable: 14,
};

/** The gRPC codes a retryOn list names, ascending (the compiled form). */
export function grpcRetryCodes(retryOn: readonly string[]): number[] {
  const codes = new Set<number>();
  for (const condition of retryOn) {
    const code = GRPC_CODE_OF_CONDITION[condition as GrpcRetryCondition];
    if (code !== undefined) codes.add(code);
  }
  return [...codes].sort((a, b) => a - b);
}
