// One active health check: a GET on a URL endpoint, or, for a binding endpoint, a call to the
// probe of the service's own sidecar (the binding belongs to the sidecar). The answer is a
// ProbeResult for people ("status 503 (expected 200)", "timeout after 1000 ms"), or null when the
// endpoint cannot be checked from here (no SIDECAR_<SERVICE> binding).
import { WorkerEntrypoint } from "cloudflare:workers";
import type { HealthCheckPolicy } from "../policies/health.ts";
import type { CompiledEndpoint } from "../policies/snapshot.ts";
import { SIDECAR_PROBE_PATH, sidecarBindingName } from "./bindings.ts";
import { CHECKS_PER_INVOCATION, runBounded, withTimeout } from "./check-runner.ts";
import { probeVerdict, type ProbeResult } from "./health.ts";

export interface ProbeTarget {
  service: string;
  endpoint: CompiledEndpoint;
  check: Pick<HealthCheckPolicy, "path" | "timeoutMs" | "expectedStatus">;
}

/** The control Worker's env as the probe sees it: the admin token and SIDECAR_<SERVICE> bindings. */
export type ProbeEnv = { EDGEMESH_ADMIN_TOKEN?: string } & Record<string, unknown>;

export async function probeEndpoint(env: ProbeEnv, { service, endpoint, check }: ProbeTarget): Promise<ProbeResult | null> {
  const started = Date.now();
  try {
    if (endpoint.url !== undefined) {
      const controller = new AbortController();
      const res = await withTimeout(fetch(endpoint.url + check.path, { headers: { "user-agent": "edgemesh-health-check" }, signal: controller.signal }), check.timeoutMs);
      if (res === "timeout") {
        controller.abort();
        return { ok: false, detail: `timeout after ${check.timeoutMs} ms` };
      }
      await res.body?.cancel();
      return probeVerdict(res.status, check.expectedStatus);
    }
    const sidecar = env[sidecarBindingName(service)] as Fetcher | undefined;
    if (!sidecar || typeof sidecar.fetch !== "function") return null;
    const target = new URL(`https://sidecar.internal${SIDECAR_PROBE_PATH}`);
    target.searchParams.set("binding", endpoint.binding ?? "");
    target.searchParams.set("path", check.path);
    target.searchParams.set("timeoutMs", String(check.timeoutMs));
    // The sidecar enforces the timeout; the slack covers the hop to it.
    const res = await withTimeout(sidecar.fetch(target, { headers: { authorization: `Bearer ${env.EDGEMESH_ADMIN_TOKEN ?? ""}` } }), check.timeoutMs + 1_000);
    if (res === "timeout") return { ok: false, detail: `timeout after ${check.timeoutMs} ms (via sidecar)` };
    const answer = (await res.json()) as { status?: number; error?: string; timedOut?: boolean };
    if (typeof answer.status === "number") return probeVerdict(answer.status, check.expectedStatus);
    return { ok: false, detail: answer.timedOut ? `timeout after ${check.timeoutMs} ms` : `check failed: ${answer.error ?? `sidecar answered ${res.status}`}` };
  } catch (err) {
    return { ok: false, detail: `connect failure after ${Date.now() - started} ms: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The HealthProbe entrypoint's RPC surface, as MeshControl calls it over the HEALTH_PROBE binding. */
export interface HealthProbeRpc {
  probeBatch(targets: ProbeTarget[]): Promise<(ProbeResult | null)[]>;
}

/**
 * The control Worker's entrypoint that runs a batch of checks in an invocation of its own (so with
 * its own connection and subrequest limits), at most CHECKS_PER_INVOCATION at once.
 */
export class HealthProbe extends WorkerEntrypoint<ProbeEnv> implements HealthProbeRpc {
  async probeBatch(targets: ProbeTarget[]): Promise<(ProbeResult | null)[]> {
    const results: (ProbeResult | null)[] = targets.map(() => null);
    await runBounded(targets.map((target, i) => ({ target, i })), CHECKS_PER_INVOCATION, async ({ target, i }) => {
      results[i] = await probeEndpoint(this.env, target);
    });
    return results;
  }
}
