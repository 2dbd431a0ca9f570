// A test upstream that describes the request it received, so tests can check what a sidecar sent.
// Behaviour on command: `x-echo-status` sets the status, `x-echo-delay-ms` delays the answer.
interface Env {
  ENDPOINT_ID: string;
}

export default {
  async fetch(request, env): Promise<Response> {
    const delayMs = Number(request.headers.get("x-echo-delay-ms") ?? 0);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const url = new URL(request.url);
    const body = request.body ? await request.text() : null;
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => (headers[k] = v));
    return Response.json(
      { endpoint: env.ENDPOINT_ID, method: request.method, path: url.pathname, search: url.search, headers, body },
      { status: Number(request.headers.get("x-echo-status") ?? 200), headers: { "x-echo-endpoint": env.ENDPOINT_ID } },
    );
  },
} satisfies ExportedHandler<Env>;
