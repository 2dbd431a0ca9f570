// Health checks of binding endpoints on behalf of the control plane. Service bindings belong to
// the sidecar, so MeshControl asks the sidecar (GET /__edgemesh/probe?binding=&path=&timeoutMs=)
// and the check takes the same path as the traffic. The answer is always 200 with JSON, so the
// control plane can tell the endpoint's status from a failure to reach the sidecar.

export interface ProbeAnswer {
  status?: number;
  latencyMs: number;
  error?: string;
  timedOut?: boolean;
}

interface Fetchable {
  fetch(request: Request): Promise<Response>;
}

export async function probeBinding(url: URL, env: Record<string, unknown>): Promise<Response> {
  const binding = url.searchParams.get("binding") ?? "";
  const path = url.searchParams.get("path") ?? "/healthz";
  const timeoutMs = Math.max(1, Math.min(Number(url.searchParams.get("timeoutMs") ?? 1000) || 1000, 60_000));
  const target = env[binding] as Fetchable | undefined;
  if (!/^[A-Z_][A-Z0-9_]*$/.test(binding) || !target || typeof target.fetch !== "function") {
    return Response.json({ error: `this sidecar has no service binding "${binding}"`, latencyMs: 0 } satisfies ProbeAnswer);
  }
  if (!path.startsWith("/")) return Response.json({ error: `probe path must start with "/": ${path}`, latencyMs: 0 } satisfies ProbeAnswer);
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
      return Response.json({ timedOut: true, error: `no answer within ${timeoutMs} ms`, latencyMs: Date.now() - started } satisfies ProbeAnswer);
    }
    await res.body?.cancel();
    return Response.json({ status: res.status, latencyMs: Date.now() - started } satisfies ProbeAnswer);
  } catch (err) {
    return Response.json({ error: err instanceof Error ? err.message : String(err), latencyMs: Date.now() - started } satisfies ProbeAnswer);
  } finally {
    clearTimeout(timer);
  }
}
