// A misbehaving upstream for resilience tests. Its behaviour comes from vars at start and can be
// changed at run time (POST /__flaky/config with JSON), so one mesh serves many scenarios:
//   failPercent + failStatus  answer that share of requests with that status (random)
//   delayMs                   answer every request this much later
//   mode "stall"              never answer (until 60 s have passed)
//   mode "reset"              throw, so the caller sees a broken exchange instead of a response
//   mode "trickle"            answer headers at once, then `trickleChunks` chunks `trickleIntervalMs`
//                             apart (a huge interval: a body that stalls after its first chunk)
//   retryAfter                a Retry-After header on failures
//   responseHeaders           extra headers on every answer (e.g. ones only the mesh may set)
// `x-flaky-status` / `x-flaky-delay-ms` request headers override per request.
// GET /__flaky/stats answers { endpoint, hits, shadowHits, bodies, lastHeaders } (lastHeaders: the
// header names of the last request); POST /__flaky/reset clears them.
interface Env {
  ENDPOINT_ID: string;
  FAIL_PERCENT?: string;
  FAIL_STATUS?: string;
  DELAY_MS?: string;
  MODE?: string;
  RETRY_AFTER?: string;
}

interface Behaviour {
  failPercent: number;
  failStatus: number;
  delayMs: number;
  mode: "ok" | "stall" | "reset" | "trickle";
  retryAfter: string;
  trickleChunks: number;
  trickleIntervalMs: number;
  responseHeaders: Record<string, string>;
}

let behaviour: Behaviour | undefined;
const stats = { hits: 0, shadowHits: 0, bodies: 0, lastHeaders: [] as string[] };

function fromVars(env: Env): Behaviour {
  return {
    failPercent: Number(env.FAIL_PERCENT ?? 0),
    failStatus: Number(env.FAIL_STATUS ?? 503),
    delayMs: Number(env.DELAY_MS ?? 0),
    mode: (env.MODE as Behaviour["mode"]) ?? "ok",
    retryAfter: env.RETRY_AFTER ?? "",
    trickleChunks: 10,
    trickleIntervalMs: 100,
    responseHeaders: {},
  };
}

/** A body of `chunks` chunks, `intervalMs` apart; the first one at once. */
function trickle(chunks: number, intervalMs: number): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent > 0) await sleep(intervalMs);
      controller.enqueue(enc.encode(`chunk ${sent}\n`));
      if (++sent >= chunks) controller.close();
    },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export default {
  async fetch(request, env): Promise<Response> {
    behaviour ??= fromVars(env);
    const url = new URL(request.url);
    if (url.pathname === "/__flaky/config") {
      behaviour = { ...fromVars(env), ...((await request.json()) as Partial<Behaviour>) };
      return Response.json(behaviour);
    }
    if (url.pathname === "/__flaky/stats") return Response.json({ endpoint: env.ENDPOINT_ID, ...stats });
    if (url.pathname === "/__flaky/reset") {
      stats.hits = stats.shadowHits = stats.bodies = 0;
      stats.lastHeaders = [];
      return Response.json({ endpoint: env.ENDPOINT_ID, reset: true });
    }

    if (request.headers.get("x-edgemesh-shadow") !== null) stats.shadowHits++;
    else stats.hits++;
    stats.lastHeaders = [...request.headers.keys()];
    if (request.body) {
      await request.arrayBuffer();
      stats.bodies++;
    }
    const b = behaviour;
    const delayMs = Number(request.headers.get("x-flaky-delay-ms") ?? b.delayMs);
    if (b.mode === "stall") await sleep(60_000);
    if (delayMs > 0) await sleep(delayMs);
    if (b.mode === "reset") throw new Error(`flaky ${env.ENDPOINT_ID}: simulated connection reset`);
    const forced = request.headers.get("x-flaky-status");
    const status = forced !== null ? Number(forced) : b.failPercent > 0 && Math.random() * 100 < b.failPercent ? b.failStatus : 200;
    const headers: Record<string, string> = { ...b.responseHeaders, "x-flaky-endpoint": env.ENDPOINT_ID };
    if (status >= 500 && b.retryAfter) headers["retry-after"] = b.retryAfter;
    if (b.mode === "trickle") return new Response(trickle(b.trickleChunks, b.trickleIntervalMs), { status, headers });
    return new Response(JSON.stringify({ endpoint: env.ENDPOINT_ID, status }), { status, headers });
  },
} satisfies ExportedHandler<Env>;
