// Where one try goes: an endpoint resolves to a service binding of the sidecar or to the global
// fetch for an origin URL. Sending the try (deadline, body, classification) is proxy.ts's job.
import type { CompiledEndpoint } from "../../policies/snapshot.ts";

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
