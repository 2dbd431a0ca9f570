// Health checks of binding endpoints on behalf of the control plane. Service bindings belong to
// the sidecar, so MeshControl asks the sidecar (SidecarControl.probe over the control Worker's
// SIDECAR_<SERVICE> binding) and the check takes the same path as the traffic. The answer is always
// data, never an exception, so the control plane can tell the endpoint's status from a failure to
// reach the sidecar.
import type { BindingProbe, ProbeAnswer } from "../../policies/sidecar-control.ts";

interface Fetchable {
  fetch(request: Request): Promise<Response>;
}

const BINDING_NAME = /^[A-Z_][A-Z0-9_]*$/;

export async function probeBinding(probe: BindingProbe, env: Record<string, unknown>): Promise<ProbeAnswer> {
  const binding = typeof probe.binding === "string" ? probe.binding : "";
  const path = typeof probe.path === "string" ? probe.path : "/healthz";
  const timeoutMs = Math.max(1, Math.min(Number(probe.timeoutMs) || 1000, 60_000));
  const target = BINDING_NAME.test(binding) ? (env[binding] as Fetchable | undefined) : undefined;
  if (!target || typeof target.fetch !== "function") return { error: `this sidecar has no service binding "${binding}"`, latencyMs: 0 };
  if (!path.startsWith("/")) return { error: `probe path must start with "/": ${path}`, latencyMs: 0 };
  const started = Date.now();
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
  try {
    const request = new Request(`https://${binding.toLowerCase()}.internal${path}`, { headers: { "user-agent": "edgemesh-health-check" }, signal: controller.signal });
    const sent = target.fetch(request);
    const res = await Promise.race([sent, timeout]);
    if (res === "timeout") {
      // The abort makes the late fetch reject (or it answers anyway): nobody awaits it any more.
      sent.then((late) => late.body?.cancel(), () => {}).catch(() => {});
      controller.abort();
      return { timedOut: true, error: `no answer within ${timeoutMs} ms`, latencyMs: Date.now() - started };
    }
    await res.body?.cancel();
    return { status: res.status, latencyMs: Date.now() - started };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err), latencyMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}
