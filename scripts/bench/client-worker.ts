// Benchmark client that runs inside workerd, so neither Node nor a socket sits in the measured
// path. GET /run?target=direct|sidecar&requests=N&concurrency=C sends N requests to the target
// binding (target=proxy: a Worker that only forwards), C at a time, and answers with every latency
// in milliseconds and the wall time. Query parameters h-<name>=<value> become request headers.
interface Env {
  DIRECT: Fetcher;
  SIDECAR: Fetcher;
  PROXY: Fetcher;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const name = url.searchParams.get("target");
    // Any other name is a binding of that name (scripts/bench/hop-profile.ts binds its variants).
    const target = name === "sidecar" ? env.SIDECAR : name === "proxy" ? env.PROXY : name === "direct" || name === null ? env.DIRECT : (env as unknown as Record<string, Fetcher>)[name]!;
    const requests = Math.min(Number(url.searchParams.get("requests") ?? 1000), 100_000);
    const concurrency = Math.max(1, Math.min(Number(url.searchParams.get("concurrency") ?? 1), 256));
    const path = url.searchParams.get("path") ?? "/bench";
    const headers: Record<string, string> = {};
    for (const [k, v] of url.searchParams) if (k.startsWith("h-")) headers[k.slice(2)] = v;
    const latenciesMs = new Float64Array(requests);
    let next = 0;
    let failures = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < requests) {
        const i = next++;
        const t0 = performance.now();
        const res = await target.fetch(`http://bench${path}`, { headers });
        await res.arrayBuffer();
        latenciesMs[i] = performance.now() - t0;
        if (res.status !== 200) failures++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const wallMs = performance.now() - started;
    return Response.json({ requests, concurrency, failures, wallMs, latenciesMs: Array.from(latenciesMs) });
  },
} satisfies ExportedHandler<Env>;
