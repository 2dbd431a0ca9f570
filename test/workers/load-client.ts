// Load generator for resilience tests, running inside workerd so that hundreds of requests cost
// milliseconds, not Node round trips. GET /run?requests=N&concurrency=C&path=/x&method=GET&tally=h
// sends N requests (C at a time) to the SIDECAR binding with the headers given as h-<name> query
// parameters, and answers { statuses, tally, wallMs, latenciesMs } where tally counts the values
// of response header `tally`.
interface Env {
  SIDECAR: Fetcher;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const q = url.searchParams;
    const requests = Math.min(Number(q.get("requests") ?? 100), 20_000);
    const concurrency = Math.max(1, Math.min(Number(q.get("concurrency") ?? 8), 256));
    const path = q.get("path") ?? "/";
    const method = q.get("method") ?? "GET";
    const body = q.get("body");
    const tallyHeader = q.get("tally") ?? "x-flaky-endpoint";
    const headers: Record<string, string> = {};
    for (const [k, v] of q) if (k.startsWith("h-")) headers[k.slice(2)] = v;
    const statuses: Record<string, number> = {};
    const tally: Record<string, number> = {};
    const latenciesMs: number[] = [];
    let next = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < requests) {
        next++;
        const t0 = Date.now();
        const res = await env.SIDECAR.fetch(`http://mesh${path}`, { method, headers, body });
        await res.arrayBuffer();
        latenciesMs.push(Date.now() - t0);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        const key = res.headers.get(tallyHeader) ?? "(none)";
        tally[key] = (tally[key] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return Response.json({ statuses, tally, wallMs: Date.now() - started, latenciesMs });
  },
} satisfies ExportedHandler<Env>;
