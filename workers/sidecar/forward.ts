// Sends one attempt to one endpoint, over a service binding or to an origin URL, with method,
// headers, body and streaming intact. The deadline covers the wait for response headers only,
// so a slow-but-started body keeps streaming.
import type { CompiledEndpoint } from "../../policies/snapshot.ts";

export type ForwardResult =
  | { kind: "response"; response: Response }
  | { kind: "timeout" }
  | { kind: "connect-failure"; error: string };

export interface Upstream {
  fetch(request: Request): Promise<Response>;
}

/** Resolves an endpoint to something that can fetch: a binding on env, or the global fetch. */
export function upstreamFor(endpoint: CompiledEndpoint, env: Record<string, unknown>): Upstream | string {
  if (endpoint.binding !== undefined) {
    const binding = env[endpoint.binding] as Upstream | undefined;
    if (!binding || typeof binding.fetch !== "function") {
      return `endpoint "${endpoint.id}" names binding ${endpoint.binding}, which this sidecar does not have`;
    }
    return binding;
  }
  return { fetch: (request) => fetch(request) };
}

/** Builds the request to send upstream: the URL's origin is the endpoint's for URL endpoints. */
export function upstreamRequest(request: Request, url: URL, endpoint: CompiledEndpoint, signal: AbortSignal): Request {
  const target = endpoint.url !== undefined ? endpoint.url + url.pathname + url.search : request.url;
  return new Request(target, { method: request.method, headers: request.headers, body: request.body, redirect: "manual", signal });
}

export async function forward(
  upstream: Upstream,
  request: Request,
  url: URL,
  endpoint: CompiledEndpoint,
  timeoutMs: number,
): Promise<ForwardResult> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<ForwardResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ kind: "timeout" });
    }, timeoutMs);
  });
  const attempt = upstream.fetch(upstreamRequest(request, url, endpoint, controller.signal)).then(
    (response): ForwardResult => ({ kind: "response", response }),
    (err: unknown): ForwardResult => ({ kind: "connect-failure", error: err instanceof Error ? err.message : String(err) }),
  );
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
