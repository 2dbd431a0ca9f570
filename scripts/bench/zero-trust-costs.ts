// What the zero-trust stages cost per request, measured in Node (one run, printed, not asserted):
// token verification with and without the verified-signature cache, issuing with and without the
// per-(caller, callee) cache, access evaluation over 64 rules and rate-limit buckets, and the
// sidecar's whole zero-trust stage (identify, access, rate limits, as index.ts runs them) for a
// request with no token to a service without rules, and for one with a token to a service with 10
// rules and a limit. In workerd, with the rest of the sidecar around it:
// scripts/bench/zero-trust-overhead.ts.
//   npx tsx scripts/bench/zero-trust-costs.ts
import { CachedTokenIssuer, generateMeshKey, issueToken, prepareSigningKeys } from "../../auth/mesh-token.ts";
import { VerifiedTokenCache, verifyMeshToken } from "../../auth/verify.ts";
import { compilePolicy } from "../../policies/compile.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { accessDeniedBy, prepareAccess } from "../../workers/sidecar/access.ts";
import { newRateLimiterState, prepareRateLimits, takeLocal } from "../../workers/sidecar/ratelimit.ts";
import { prepareStageServices, STAGE_MESH, zeroTrustStage } from "./zero-trust-stage.ts";

async function perOpMicros(ops: number, run: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.min(ops, 200); i++) await run(i); // warm-up
  const started = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) await run(i);
  return Number(process.hrtime.bigint() - started) / 1000 / ops;
}

const keys = await prepareSigningKeys({ keys: [await generateMeshKey({ kid: "k1" })] });
const token = await issueToken(keys, { mesh: "m", caller: "job", callee: "api", ttlMs: 3_600_000 });
const options = { audience: "api", mesh: "m" };
const cache = new VerifiedTokenCache();
const issuer = new CachedTokenIssuer(keys, "m", 300_000);

const rules = Array.from({ length: 32 }, (_, i) => ({ name: `deny-${i}`, from: [`svc-${i}`], paths: [{ regex: `/private-${i}/[0-9]+` }] }));
const allow = Array.from({ length: 32 }, (_, i) => ({ name: `allow-${i}`, from: ["web"], methods: ["GET" as const], paths: [{ prefix: `/books-${i}/` }] }));
const doc = validatePolicy({
  mesh: "m",
  services: {
    web: {},
    ...Object.fromEntries(rules.map((_, i) => [`svc-${i}`, {}])),
    api: {
      endpoints: [{ id: "a", binding: "A" }],
      access: { deny: rules, allow },
      rateLimits: [{ requests: 1e9, per: ["caller"] }, { requests: 1e9, per: ["client-ip"] }, { requests: 1e9 }],
    },
  },
});
if (!doc.ok) throw new Error(JSON.stringify(doc.errors));
const api = compilePolicy(doc.document).services.api!;
const access = prepareAccess(api.access);
const request = { method: "GET", path: "/books-31/7", headers: new Headers({ "user-agent": "bench" }) };
const limits = prepareRateLimits(api.rateLimits, api.routes.map((r) => r.name));
const limiter = newRateLimiterState();

// The sidecar's zero-trust stage, step for step as workers/sidecar/index.ts runs it.
const stage = prepareStageServices();
const stageKeys = { keys: [await generateMeshKey({ kid: "k1" })] };
const stageEnv = { EDGEMESH_TOKEN_KEYS: JSON.stringify(stageKeys) };
const stageToken = await issueToken(await prepareSigningKeys(stageKeys), { mesh: STAGE_MESH, caller: "nightly", callee: "guarded", ttlMs: 3_600_000 });
const noToken = new Request("http://plain/bench");
const withToken = new Request("http://guarded/bench", { headers: { "x-edgemesh-token": stageToken } });

const results = {
  stageNoTokenNoRulesMicros: await perOpMicros(100_000, () => zeroTrustStage(noToken, "/bench", stage.plain, stageEnv)),
  stageTokenTenRulesMicros: await perOpMicros(50_000, () => zeroTrustStage(withToken, "/bench", stage.guarded, stageEnv)),
  verifyUncachedMicros: await perOpMicros(2_000, () => verifyMeshToken(token, keys, options)),
  verifyCachedMicros: await perOpMicros(20_000, () => verifyMeshToken(token, keys, { ...options, cache })),
  issueMicros: await perOpMicros(2_000, () => issueToken(keys, { mesh: "m", caller: "job", callee: "api", ttlMs: 60_000 })),
  issueCachedMicros: await perOpMicros(20_000, () => issuer.tokenFor("job", "api")),
  access64RulesMicros: await perOpMicros(50_000, () => accessDeniedBy(access, "web", request)),
  rateLimit3BucketsMicros: await perOpMicros(50_000, (i) => takeLocal(limiter, limits, { route: "default", caller: "web", clientIp: `ip-${i % 1000}` }, Date.now())),
};
if (accessDeniedBy(access, "web", request) !== undefined) throw new Error("the benchmark request should be allowed after passing every rule");

for (const [name, micros] of Object.entries(results)) console.log(`${name.padEnd(26)} ${micros.toFixed(2)} µs`);
console.log(`verify: uncached / cached   ${(results.verifyUncachedMicros / results.verifyCachedMicros).toFixed(1)}x`);
console.log(`issue:  uncached / cached   ${(results.issueMicros / results.issueCachedMicros).toFixed(1)}x`);
