// Access policy: who may call a service, as allow and deny rules by caller identity, method, path
// and headers, plus the mesh's default (permissive or strict) and what to do with identity claims
// that do not verify. schema.ts plugs these into the document and its services; `compileAccess`
// turns them into the snapshot's plain data, which workers/sidecar/access.ts evaluates.
//
// Regexes here run on RE2 semantics (re2js, linear time): paths and headers come from the
// internet, and a backtracking engine would let one request stall an isolate.
import { RE2JS } from "re2js";
import { z } from "zod";
import { EXTERNAL_CALLER } from "../auth/caller-names.ts";
import type { CompiledAccess, CompiledAccessRule, CompiledStringMatch, CompiledValueMatch } from "./snapshot.ts";

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"] as const;

export { EXTERNAL_CALLER };
/** Any caller, verified or not. */
export const ANY_CALLER = "*";
export const MAX_ACCESS_RULES = 256;
/** What x-edgemesh-denied-by names when no allow rule admitted a request: `<service>/(default-deny)`. */
export const DEFAULT_DENY_RULE = "(default-deny)";

/** Checks that a regex compiles on RE2 (no lookaround, no backreferences), naming what is wrong. */
export function checkRe2(source: string, ctx: z.RefinementCtx, path: (string | number)[]): void {
  try {
    RE2JS.compile(source);
  } catch (err) {
    ctx.addIssue({ code: "custom", path, message: `not a valid RE2 regular expression (no lookaround or backreferences): ${(err as Error).message}` });
  }
}

export const CallerSelector = z
  .string()
  .refine((v) => v === ANY_CALLER || NAME.test(v), 'a caller is a service or identity name, "external" or "*"')
  .describe('A caller: a service of the mesh, an identity declared in `access.identities`, "external" (no verified identity) or "*" (anyone).');

const oneOf = (kinds: readonly string[], m: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const given = kinds.filter((k) => m[k] !== undefined);
  if (given.length !== 1) ctx.addIssue({ code: "custom", message: `give exactly one of ${kinds.map((k) => `"${k}"`).join(", ")} (got ${given.length ? given.join(", ") : "none"})` });
};

export const AccessPathMatch = z
  .object({
    exact: z.string().regex(/^\//, 'a path starts with "/"').max(2048).optional().describe("The path must equal this."),
    prefix: z.string().regex(/^\//, 'a path starts with "/"').max(2048).optional().describe("The path must start with this."),
    regex: z.string().min(1).max(1024).optional().describe("The whole path must match this RE2 regular expression."),
  })
  .strict()
  .superRefine((m, ctx) => {
    oneOf(["exact", "prefix", "regex"], m, ctx);
    if (m.regex !== undefined) checkRe2(m.regex, ctx, ["regex"]);
  })
  .describe("A path condition: exactly one of exact, prefix or regex (RE2). Matched against the path with percent-encoded unreserved characters decoded and repeated slashes merged.");

export const AccessHeaderMatch = z
  .object({
    exact: z.string().max(4096).optional().describe("The value must equal this."),
    prefix: z.string().min(1).max(4096).optional().describe("The value must start with this."),
    regex: z.string().min(1).max(1024).optional().describe("The whole value must match this RE2 regular expression."),
    present: z.boolean().optional().describe("true: the header must be present; false: it must be absent."),
  })
  .strict()
  .superRefine((m, ctx) => {
    oneOf(["exact", "prefix", "regex", "present"], m, ctx);
    if (m.regex !== undefined) checkRe2(m.regex, ctx, ["regex"]);
  })
  .describe("A header condition: exactly one of exact, prefix, regex (RE2) or present.");

export const AccessRule = z
  .object({
    name: z.string().regex(NAME, "a rule name is lowercase letters, digits and '-', e.g. \"block-admin\"").optional()
      .describe('Named in x-edgemesh-denied-by as "<service>/<name>"; default "allow[i]" or "deny[i]".'),
    from: z.array(CallerSelector).min(1).max(256).optional().describe("Callers this rule is about; omitted means any caller."),
    methods: z.array(z.enum(HTTP_METHODS)).min(1).optional().describe("The method must be one of these; omitted means any."),
    paths: z.array(AccessPathMatch).min(1).max(64).optional().describe("Any one must match; omitted means any path."),
    headers: z.record(z.string().regex(HEADER_NAME, "not a valid header name"), AccessHeaderMatch).optional()
      .describe("Every listed header must match (names are case-insensitive)."),
  })
  .strict()
  .describe("A rule holds for a request when every condition it gives holds.");

export const AccessMode = z.enum(["permissive", "strict"]);
export const UnverifiedIdentity = z.enum(["refuse", "external"]);

export const ServiceAccess = z
  .object({
    mode: AccessMode.optional().describe("Overrides the mesh's `access.mode` for this service."),
    unverifiedIdentity: UnverifiedIdentity.optional().describe("Overrides the mesh's `access.unverifiedIdentity` for this service."),
    allow: z.array(AccessRule).max(MAX_ACCESS_RULES).default([])
      .describe("When any are given, a request must match one of them (after no deny rule matched)."),
    deny: z.array(AccessRule).max(MAX_ACCESS_RULES).default([]).describe("A request matching any of these is refused with 403; checked before allow."),
  })
  .strict()
  .superRefine((access, ctx) => {
    const seen = new Map<string, string>();
    for (const list of ["deny", "allow"] as const) {
      access[list].forEach((rule, i) => {
        if (rule.name === undefined) return;
        const first = seen.get(rule.name);
        if (first !== undefined) ctx.addIssue({ code: "custom", path: [list, i, "name"], message: `rule name "${rule.name}" is already used by ${first}` });
        else seen.set(rule.name, `${list}[${i}]`);
      });
    }
  })
  .describe("Who may call this service. Deny rules are checked first; then allow rules, if any, must admit the request.");

export const TokenSettings = z
  .object({
    clockSkewMs: z.number().int().min(0).max(300_000).default(30_000)
      .describe("Clock difference tolerated between a token's issuer and a sidecar, at both ends of its validity."),
    maxLifetimeMs: z.number().int().min(60_000).max(7 * 86_400_000).default(86_400_000)
      .describe("Tokens that claim to live longer than this are refused (and are not issued)."),
    forwardedTtlMs: z.number().int().min(10_000).max(3_600_000).default(300_000)
      .describe("Lifetime of the token a sidecar attaches when it forwards to a URL endpoint; one is reused per caller until half of it is gone."),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.forwardedTtlMs > t.maxLifetimeMs) ctx.addIssue({ code: "custom", path: ["forwardedTtlMs"], message: `must not exceed maxLifetimeMs (${t.maxLifetimeMs})` });
  })
  .describe("Mesh tokens: signed with the key set in the secret EDGEMESH_TOKEN_KEYS.");

export const MeshAccess = z
  .object({
    mode: AccessMode.default("permissive")
      .describe('permissive: a service without allow rules admits every caller its deny rules do not refuse. strict: a request no allow rule admits is refused (as SMI TrafficTarget).'),
    unverifiedIdentity: UnverifiedIdentity.default("refuse")
      .describe('A mesh token that does not verify, or an identity header without one: refuse (401) or treat the caller as "external".'),
    identities: z.array(z.string().regex(NAME, "an identity is lowercase letters, digits and '-'")).max(1024).default([])
      .describe('Callers that are not services of the mesh (jobs, origins, other meshes) and present mesh tokens; access rules and rate limits may name them. "external" is reserved.'),
    tokens: TokenSettings.prefault({}),
  })
  .strict()
  .describe("Mesh-wide access defaults and the identities that are not services.");

export type AccessRulePolicy = z.output<typeof AccessRule>;
export type ServiceAccessPolicy = z.output<typeof ServiceAccess>;
export type MeshAccessPolicy = z.output<typeof MeshAccess>;

interface DocumentForCallers {
  access: MeshAccessPolicy;
  services: Record<string, { access?: ServiceAccessPolicy }>;
}

/** Every caller name a rule may use in this document, and a message listing them. */
export function knownCallers(doc: { access: MeshAccessPolicy; services: Record<string, unknown> }): { names: Set<string>; describe: string } {
  const names = new Set([...Object.keys(doc.services), ...doc.access.identities, EXTERNAL_CALLER, ANY_CALLER]);
  const identities = doc.access.identities.length ? doc.access.identities.join(", ") : "(none)";
  return { names, describe: `services: ${Object.keys(doc.services).join(", ") || "(none)"}; identities: ${identities}; or "external", "*"` };
}

/** Reports a caller name that is neither a service, a declared identity, "external" nor "*". */
export function checkCallerNames(names: readonly string[] | undefined, known: ReturnType<typeof knownCallers>, ctx: z.RefinementCtx, path: (string | number)[]): void {
  names?.forEach((name, i) => {
    if (!known.names.has(name)) ctx.addIssue({ code: "custom", path: [...path, i], message: `unknown caller "${name}"; ${known.describe} (declare callers that are not services in access.identities)` });
  });
}

/** Document-level checks: callers named in rules exist, and "external" stays reserved. */
export function refineAccessDocument(doc: DocumentForCallers, ctx: z.RefinementCtx): void {
  if (EXTERNAL_CALLER in doc.services) {
    ctx.addIssue({ code: "custom", path: ["services", EXTERNAL_CALLER], message: `the name "${EXTERNAL_CALLER}" is reserved for callers without a verified identity; rename the service` });
  }
  doc.access.identities.forEach((id, i) => {
    if (id === EXTERNAL_CALLER) ctx.addIssue({ code: "custom", path: ["access", "identities", i], message: `"${EXTERNAL_CALLER}" is reserved for callers without a verified identity` });
  });
  const known = knownCallers(doc);
  for (const [service, svc] of Object.entries(doc.services)) {
    for (const list of ["deny", "allow"] as const) {
      svc.access?.[list].forEach((rule, i) => checkCallerNames(rule.from, known, ctx, ["services", service, "access", list, i, "from"]));
    }
  }
}

// ---- compiling ------------------------------------------------------------------------------

function compileString(m: { exact?: string; prefix?: string; regex?: string }): CompiledStringMatch {
  if (m.exact !== undefined) return { kind: "exact", value: m.exact };
  if (m.prefix !== undefined) return { kind: "prefix", value: m.prefix };
  // Anchored, like route regexes: the whole value must match.
  return { kind: "regex", value: `^(?:${m.regex})$` };
}

function compileRule(service: string, list: "allow" | "deny", index: number, rule: AccessRulePolicy): CompiledAccessRule {
  const compiled: CompiledAccessRule = {
    id: `${service}/${rule.name ?? `${list}[${index}]`}`,
    paths: (rule.paths ?? []).map(compileString),
    headers: Object.entries(rule.headers ?? {}).map(([name, m]): CompiledValueMatch =>
      m.present !== undefined ? { name: name.toLowerCase(), kind: m.present ? "present" : "absent", value: "" } : { name: name.toLowerCase(), ...compileString(m) }),
  };
  if (rule.from && !rule.from.includes(ANY_CALLER)) compiled.callers = [...new Set(rule.from)];
  if (rule.methods) compiled.methods = [...new Set(rule.methods)];
  return compiled;
}

/** The service's access policy with the mesh's defaults filled in. */
export function compileAccess(service: string, policy: ServiceAccessPolicy | undefined, mesh: MeshAccessPolicy): CompiledAccess {
  const mode = policy?.mode ?? mesh.mode;
  const allow = (policy?.allow ?? []).map((r, i) => compileRule(service, "allow", i, r));
  return {
    mode,
    unverifiedIdentity: policy?.unverifiedIdentity ?? mesh.unverifiedIdentity,
    deny: (policy?.deny ?? []).map((r, i) => compileRule(service, "deny", i, r)),
    allow,
    // Permissive with no allow rules admits what deny rules let through; otherwise allow is a list.
    defaultDeny: mode === "strict" || allow.length > 0,
    defaultDenyId: `${service}/${DEFAULT_DENY_RULE}`,
    tokens: { ...mesh.tokens },
  };
}
