// The least a Worker in the path can cost: hands the request to the upstream untouched. The
// benchmark's reference for how much of the sidecar's price is the extra hop itself.
interface Env {
  UPSTREAM: Fetcher;
}

export default {
  fetch(request, env): Promise<Response> {
    return env.UPSTREAM.fetch(request);
  },
} satisfies ExportedHandler<Env>;
