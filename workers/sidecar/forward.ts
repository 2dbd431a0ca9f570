// Where one try goes: an endpoint resolves to a service binding of the sidecar or to the global
// fetch for an origin URL. Sending the try (deadline, body, classification) is proxy.ts's job.
import type { CompiledEndpoint } from "../../policies/snapshot.ts";

export interface Upstream {
  fetch(request: Request): Promise<Response>;
}

// One for every origin-URL endpoint, not one per try.
const GLOBAL_FETCH: Upstream = { fetch: (request) => fetch(request) };

/** Resolves an endpoint to something that can fetch: a binding on env, or the global fetch. */
export function upstreamFor(endpoint: CompiledEndpoint, env: Record<string, unknown>): Upstream | string {
  if (endpoint.binding !== undefined) {
    const binding = env[endpoint.binding] as Upstream | undefined;
    if (!binding || typeof binding.fetch !== "function") {
      return `endpoint "${endpoint.id}" names binding ${endpoint.binding}, which this sidecar does not have`;
    }
    return binding;
  }
  return GLOBAL_FETCH;
}

/** The URL a try (or a shadow) goes to: the request's path and query on an origin endpoint. */
export function targetUrl(endpoint: CompiledEndpoint, url: URL): string {
  return endpoint.url !== undefined ? endpoint.url + url.pathname + url.search : url.href;
}

/**
 * The headers a try (or a shadow) to `endpoint` carries: to an origin URL, the ones with the
 * caller's forwarded mesh token when the sidecar made them; to a binding, the others (the callee
 * Worker knows its caller from the binding, and needs no token).
 */
export function tryHeaders(endpoint: CompiledEndpoint, headers: Headers, originHeaders: Headers | undefined): Headers {
  return originHeaders !== undefined && endpoint.url !== undefined ? originHeaders : headers;
}
