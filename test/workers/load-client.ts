// Load generator for resilience tests, running inside workerd so that hundreds of requests cost
// milliseconds, not Node round trips. GET /run?requests=N&concurrency=C&path=/x&method=GET&tally=h
// sends N requests (C at a time) to the SIDECAR binding with the headers given as h-<name> query
// parameters, and answers { statuses, tally, wallMs, latenciesMs } where tally counts the values
// of response header `tally`. With &rate=R the requests start on a schedule of R per second (open
// loop, C is then only a cap on requests in flight), so latency is measured below saturation.
// With &url=http://127.0.0.1:port the requests go to that origin instead (benchmark peers).
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
    const ratePerSecond = Math.min(Number(q.get("rate") ?? 0), 100_000);
    const origin = q.get("url");
    const send = (init: RequestInit) => (origin ? fetch(`${origin}${path}`, init) : env.SIDECAR.fetch(`http://mesh${path}`, init));
    const headers: Record<string, string> = {};
    for (const [k, v] of q) if (k.startsWith("h-")) headers[k.slice(2)] = v;
    const statuses: Record<string, number> = {};
    const tally: Record<string, number> = {};
    const latenciesMs: number[] = [];
    let next = 0;
    const started = Date.now();
    const worker = async () => {
      while (next < requests) {
        const i = next++;
        if (ratePerSecond > 0) {
          const dueMs = started + (i * 1000) / ratePerSecond;
          if (dueMs > Date.now()) await new Promise((r) => setTimeout(r, dueMs - Date.now()));
        }
        const t0 = Date.now();
        const res = await send({ method, headers, body });
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
