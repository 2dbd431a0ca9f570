// The sidecar: one per service, the same code for every service. This file only composes the
// pipeline stages; each stage is its own module with its own tests.
import type { MeshControlRpc } from "../../policies/snapshot.ts";
import { pickEndpoint } from "./balance.ts";
import { forward, upstreamFor } from "./forward.ts";
import { matchRoute, type RequestFacts } from "./match.ts";
import { DEBUG_HEADER, meshError } from "./responses.ts";
import { currentSnapshot, snapshotStatus, type SnapshotSource } from "./snapshot-cache.ts";
import { pickSubset } from "./split.ts";

export interface SidecarEnv {
  SERVICE_NAME: string;
  MESH_NAME: string;
  MESH_CONTROL: DurableObjectNamespace;
  /** TTL used until the first snapshot says its own (ms). */
  SNAPSHOT_TTL_MS?: string;
  /** How long a cold isolate waits for the control plane (ms). */
  COLD_SNAPSHOT_TIMEOUT_MS?: string;
  /** Guards the sidecar's /__edgemesh/ debug endpoints when set. */
  EDGEMESH_ADMIN_TOKEN?: string;
}

const DEBUG_PREFIX = "/__edgemesh/";

function sourceFor(env: SidecarEnv, request: Request): SnapshotSource {
  return {
    meshName: env.MESH_NAME,
    serviceName: env.SERVICE_NAME,
    control: () => env.MESH_CONTROL.get(env.MESH_CONTROL.idFromName(env.MESH_NAME)) as unknown as MeshControlRpc,
    colo: (request.cf?.colo as string | undefined) ?? "local",
    defaultTtlMs: Number(env.SNAPSHOT_TTL_MS ?? 1000),
    coldTimeoutMs: Number(env.COLD_SNAPSHOT_TIMEOUT_MS ?? 5000),
  };
}

function debugEndpoint(request: Request, url: URL, env: SidecarEnv): Response {
  if (env.EDGEMESH_ADMIN_TOKEN && request.headers.get("authorization") !== `Bearer ${env.EDGEMESH_ADMIN_TOKEN}`) {
    return meshError(401, "x-edgemesh-denied-by", "admin-token-required");
  }
  if (url.pathname === `${DEBUG_PREFIX}status`) {
    const s = snapshotStatus();
    return Response.json({
      service: env.SERVICE_NAME,
      mesh: env.MESH_NAME,
      isolateId: s.isolateId,
      snapshot: s.loaded
        ? { policyVersion: s.loaded.snapshot.policyVersion, generation: s.loaded.snapshot.generation, source: s.loaded.source, checkedAtMs: s.loaded.checkedAtMs }
        : null,
      revalidations: s.revalidations,
      failures: s.failures,
      lastError: s.lastError ?? null,
    });
  }
  if (url.pathname === `${DEBUG_PREFIX}snapshot`) {
    return Response.json(snapshotStatus().loaded?.snapshot ?? null);
  }
  return meshError(404, "x-edgemesh-error", "unknown-debug-endpoint", { known: [`${DEBUG_PREFIX}status`, `${DEBUG_PREFIX}snapshot`] });
}

async function handle(request: Request, env: SidecarEnv, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname.startsWith(DEBUG_PREFIX)) return debugEndpoint(request, url, env);

  const loaded = await currentSnapshot(sourceFor(env, request), (p) => ctx.waitUntil(p));
  if (!loaded) {
    return meshError(503, "x-edgemesh-error", "no-snapshot", { detail: snapshotStatus().lastError ?? "control plane unreachable" });
  }
  const { snapshot } = loaded;

  const facts: RequestFacts = { method: request.method, path: url.pathname, headers: request.headers, query: () => url.searchParams };
  const matched = matchRoute(loaded.routes, facts);
  if (!matched) return meshError(404, "x-edgemesh-no-route", "no-route-matched", { service: snapshot.service });
  const route = matched.route;

  const subset = pickSubset(route.split);
  const index = pickEndpoint(snapshot.subsets[subset]);
  if (index < 0) return meshError(503, "x-edgemesh-error", "no-endpoint", { route: route.name, subset });
  const endpoint = snapshot.endpoints[index]!;

  const upstream = upstreamFor(endpoint, env as unknown as Record<string, unknown>);
  if (typeof upstream === "string") return meshError(502, "x-edgemesh-error", "missing-binding", { detail: upstream });

  const result = await forward(upstream, request, url, endpoint, route.timeoutMs);
  let response: Response;
  if (result.kind === "response") response = result.response;
  else if (result.kind === "timeout") response = meshError(504, "x-edgemesh-timeout", "route-timeout", { route: route.name, timeoutMs: route.timeoutMs });
  else response = meshError(502, "x-edgemesh-error", "connect-failure", { endpoint: endpoint.id, detail: result.error });

  if (request.headers.get(DEBUG_HEADER) !== null) {
    response = new Response(response.body, response);
    const h = response.headers;
    h.set("x-edgemesh-service", snapshot.service);
    h.set("x-edgemesh-route", route.name);
    h.set("x-edgemesh-subset", subset);
    h.set("x-edgemesh-endpoint", endpoint.id);
    h.set("x-edgemesh-snapshot-version", String(snapshot.policyVersion));
    h.set("x-edgemesh-snapshot-generation", String(snapshot.generation));
  }
  return response;
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    try {
      return await handle(request, env, ctx);
    } catch (err) {
      // A broken request must never take the sidecar down.
      return meshError(500, "x-edgemesh-error", "sidecar-internal-error", { detail: err instanceof Error ? err.message : String(err) });
    }
  },
} satisfies ExportedHandler<SidecarEnv>;
