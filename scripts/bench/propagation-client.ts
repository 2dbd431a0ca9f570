// Propagation benchmark driver, inside workerd. Bindings S0..S{N-1} are N sidecar Workers (N
// isolates) of one service. GET /run?expect=V&timeoutMs=T&gapMs=G keeps steady traffic on every
// sidecar (one request per G ms each) and records, per sidecar, the first Date.now() at which it
// served policy version V or later. It answers when all have, or at the timeout. The sidecars give
// their debug headers (which say the version) only with a debug credential: the run request brings
// one in x-edgemesh-debug-token (POST /v1/debug-tokens).
interface Env {
  SIDECARS: string;
  [binding: string]: unknown;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const expect = Number(url.searchParams.get("expect") ?? 1);
    const timeoutMs = Number(url.searchParams.get("timeoutMs") ?? 5000);
    const gapMs = Number(url.searchParams.get("gapMs") ?? 10);
    const names = env.SIDECARS.split(",");
    const debug = { "x-edgemesh-debug": "1", "x-edgemesh-debug-token": request.headers.get("x-edgemesh-debug-token") ?? "" };
    const deadline = Date.now() + timeoutMs;
    const firstSeenMs: (number | null)[] = names.map(() => null);
    let requests = 0;
    let failures = 0;
    await Promise.all(
      names.map(async (name, i) => {
        const sidecar = env[name] as Fetcher;
        while (Date.now() < deadline && firstSeenMs[i] === null) {
          const res = await sidecar.fetch("http://bench/propagation", { headers: debug });
          await res.arrayBuffer();
          requests++;
          if (res.status !== 200) failures++;
          const version = Number(res.headers.get("x-edgemesh-snapshot-version") ?? 0);
          if (version >= expect) firstSeenMs[i] = Date.now();
          else await new Promise((r) => setTimeout(r, gapMs));
        }
      }),
    );
    return Response.json({ firstSeenMs, requests, failures });
  },
} satisfies ExportedHandler<Env>;
