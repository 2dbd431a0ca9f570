// The mesh's own headers (x-edgemesh-*) mean something only when the sidecar set them: a client
// that sends x-edgemesh-shadow: 1 must not make a real write look like a shadow to the service, and
// an upstream must not speak for the mesh in its answer. So they are taken off in both directions,
// and the sidecar adds its own afterwards.

export const MESH_HEADER_PREFIX = "x-edgemesh-";

/**
 * `headers` without any x-edgemesh-* header and without the names in `drop` (lower case). The same
 * object when there is nothing to take off, which is nearly always: one pass over the names, no copy.
 */
export function withoutMeshHeaders(headers: Headers, drop: readonly string[] = []): Headers {
  let remove: string[] | undefined;
  // forEach is one call into the runtime; iterating keys() is one per header. Names come lower-cased.
  headers.forEach((_value, name) => {
    if (name.startsWith(MESH_HEADER_PREFIX) || (drop.length > 0 && drop.includes(name))) (remove ??= []).push(name);
  });
  if (remove === undefined) return headers;
  const kept = new Headers(headers);
  for (const name of remove) kept.delete(name);
  return kept;
}
