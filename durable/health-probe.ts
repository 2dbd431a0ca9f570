// One active health check: a GET on a URL endpoint, or, for a binding endpoint, a call to the
// probe of the service's own sidecar (the binding belongs to the sidecar) on its SidecarControl
// entrypoint, over the control Worker's SIDECAR_<SERVICE> binding. The answer is a
// ProbeResult for people ("status 503 (expected 200)", "timeout after 1000 ms"), or null when the
// endpoint cannot be checked from here (no SIDECAR_<SERVICE> binding).
import { WorkerEntrypoint } from "cloudflare:workers";
import type { HealthCheckPolicy } from "../policies/health.ts";
import type { SidecarControlRpc } from "../policies/sidecar-control.ts";
import type { CompiledEndpoint } from "../policies/snapshot.ts";
import { sidecarBindingName } from "./bindings.ts";
import { CHECKS_PER_INVOCATION, runBounded, withTimeout } from "./check-runner.ts";
import { probeVerdict, type ProbeResult } from "./health.ts";

export interface ProbeTarget {
  service: string;
  endpoint: CompiledEndpoint;
  check: Pick<HealthCheckPolicy, "path" | "timeoutMs" | "expectedStatus">;
}

/** The control Worker's env as the probe sees it: its SIDECAR_<SERVICE> bindings. */
export type ProbeEnv = Record<string, unknown>;

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
    const sidecar = env[sidecarBindingName(service)] as SidecarControlRpc | undefined;
    if (!sidecar) return null;
    // The sidecar enforces the timeout; the slack covers the hop to it.
    const answer = await withTimeout(sidecar.probe({ binding: endpoint.binding ?? "", path: check.path, timeoutMs: check.timeoutMs }), check.timeoutMs + 1_000);
    if (answer === "timeout") return { ok: false, detail: `timeout after ${check.timeoutMs} ms (via sidecar)` };
    if (typeof answer.status === "number") return probeVerdict(answer.status, check.expectedStatus);
    return { ok: false, detail: answer.timedOut ? `timeout after ${check.timeoutMs} ms` : `check failed: ${answer.error ?? "the sidecar gave no status"}` };
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
