// Runs the zero-trust building blocks inside workerd, for test/integration/zero-trust-runtime.test.ts:
// mesh tokens (Ed25519 in workerd's Web Crypto), access rules (re2js) and rate limits with
// Cloudflare's rate limiting binding as Miniflare simulates it. State lives in module globals per
// isolate, as it will in the sidecar.
import { issueToken, keySetFromSecret, prepareSigningKeys, verifyMeshToken } from "../../auth/mesh-token.ts";
import type { CompiledAccess, CompiledRateLimit } from "../../policies/snapshot.ts";
import { accessDeniedBy, accessDeniedResponse, prepareAccess } from "../../workers/sidecar/access.ts";
import {
  hasSharedLimits,
  newRateLimiterState,
  prepareRateLimits,
  rateLimitedResponse,
  rateLimiterStatus,
  takeLocal,
  takeShared,
  type PreparedRateLimits,
} from "../../workers/sidecar/ratelimit.ts";

interface Env {
  /** CompiledRateLimit[] as JSON. */
  RATE_LIMITS: string;
  /** The service's route names, comma-separated. */
  ROUTES: string;
}

const limiter = newRateLimiterState();
let prepared: PreparedRateLimits | undefined;

async function rateLimited(request: Request, env: Env, url: URL): Promise<Response> {
  prepared ??= prepareRateLimits(JSON.parse(env.RATE_LIMITS) as CompiledRateLimit[], env.ROUTES.split(","));
  const req = { route: url.searchParams.get("route") ?? "default", caller: url.searchParams.get("caller") ?? "external", clientIp: request.headers.get("cf-connecting-ip") ?? "unknown" };
  const local = takeLocal(limiter, prepared, req, Date.now());
  if (local) return rateLimitedResponse(local);
  if (hasSharedLimits(prepared, req.route)) {
    const shared = await takeShared(limiter, prepared, req, env as unknown as Record<string, unknown>);
    if (shared) return rateLimitedResponse(shared);
  }
  return Response.json({ ok: true });
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/ratelimit") return rateLimited(request, env, url);
    if (url.pathname === "/ratelimit/status") return Response.json(rateLimiterStatus(limiter));
    const body = (await request.json()) as Record<string, any>;
    if (url.pathname === "/token/issue") {
      const keys = await prepareSigningKeys(body.keys);
      return Response.json({ token: await issueToken(keys, body.options) });
    }
    if (url.pathname === "/token/verify") {
      const keys = await keySetFromSecret(body.keys);
      return Response.json(await verifyMeshToken(body.token, keys, body.options));
    }
    if (url.pathname === "/access") {
      const access = prepareAccess(body.access as CompiledAccess);
      const deniedBy = accessDeniedBy(access, body.caller, { method: body.method, path: body.path, headers: new Headers(body.headers ?? {}) });
      return deniedBy ? accessDeniedResponse(deniedBy, body.caller) : Response.json({ allowed: true });
    }
    return new Response("unknown", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
