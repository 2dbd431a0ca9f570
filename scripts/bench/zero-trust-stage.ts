// The sidecar's zero-trust stage, step for step as workers/sidecar/index.ts runs it (identify,
// access, rate limits), over the benchmark's two services: `plain` (no rules) and `guarded` (10
// rules and a limit, zero-trust-policy.ts). Shared by the Node benchmark (zero-trust-costs.ts) and
// the Worker that runs it in workerd (zero-trust-stage-worker.ts), so both time the same code.
import { callerName } from "../../auth/identity.ts";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import type { ServiceSnapshot } from "../../policies/snapshot.ts";
import { accessDeniedBy, hasAccessRules, prepareAccess, type PreparedAccess } from "../../workers/sidecar/access.ts";
import { identify, prepareIdentity, type IdentityEnv, type PreparedIdentity } from "../../workers/sidecar/identity.ts";
import { hasRateLimits, newRateLimiterState, prepareRateLimits, takeLocal, type PreparedRateLimits } from "../../workers/sidecar/ratelimit.ts";
import { BENCH_IDENTITIES, ONE_LIMIT, TEN_RULES } from "./zero-trust-policy.ts";

export const STAGE_MESH = "m";

export interface PreparedService {
  identity: PreparedIdentity;
  access: PreparedAccess;
  rateLimits: PreparedRateLimits;
}

/** The two services compiled and prepared as snapshot-cache.ts prepares a snapshot. */
export function prepareStageServices(): { plain: PreparedService; guarded: PreparedService } {
  const doc = validatePolicy({
    mesh: STAGE_MESH,
    access: { identities: BENCH_IDENTITIES },
    services: { plain: { endpoints: [{ id: "p", binding: "P" }] }, guarded: { endpoints: [{ id: "g", binding: "G" }], access: TEN_RULES, rateLimits: ONE_LIMIT } },
  });
  if (!doc.ok) throw new Error(JSON.stringify(doc.errors));
  const compiled = compilePolicy(doc.document);
  const prepare = (service: "plain" | "guarded"): PreparedService => {
    const snap = { ...compiled.services[service]!, policyVersion: 1, generation: 1, epoch: "e" } as ServiceSnapshot;
    return { identity: prepareIdentity(snap), access: prepareAccess(snap.access), rateLimits: prepareRateLimits(snap.rateLimits, snap.routes.map((r) => r.name)) };
  };
  return { plain: prepare("plain"), guarded: prepare("guarded") };
}

const limiter = newRateLimiterState();

/** One request through the stage; throws when the stage would refuse it (the benchmark's requests never are). */
export async function zeroTrustStage(request: Request, path: string, service: PreparedService, env: IdentityEnv): Promise<void> {
  const identified = identify(request, undefined, service.identity, env);
  const identity = identified instanceof Promise ? await identified : identified;
  if (identity.kind === "refused") throw new Error(`refused: ${identity.reason}`);
  const caller = callerName(identity);
  if (hasAccessRules(service.access) && accessDeniedBy(service.access, caller, { method: request.method, path, headers: request.headers }) !== undefined) throw new Error("denied");
  if (hasRateLimits(service.rateLimits, "default")) {
    if (takeLocal(limiter, service.rateLimits, { route: "default", caller, clientIp: request.headers.get("cf-connecting-ip") ?? "unknown" }, Date.now())) throw new Error("limited");
  }
}
