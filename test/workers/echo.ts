// A test upstream that describes the request it received, so tests can check what a sidecar sent.
// Behaviour on command: `x-echo-status` sets the status, `x-echo-delay-ms` delays the answer.
// `BACKEND` names the deployment it stands for (default: the endpoint id), for tests where two
// endpoints of different services are the same backend (the Gateway API conformance cases).
interface Env {
  ENDPOINT_ID: string;
  BACKEND?: string;
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
      { endpoint: env.ENDPOINT_ID, backend: env.BACKEND ?? env.ENDPOINT_ID, method: request.method, host: url.host, path: url.pathname, search: url.search, headers, body },
      { status: Number(request.headers.get("x-echo-status") ?? 200), headers: { "x-echo-endpoint": env.ENDPOINT_ID, "x-echo-backend": env.BACKEND ?? env.ENDPOINT_ID } },
    );
  },
} satisfies ExportedHandler<Env>;
