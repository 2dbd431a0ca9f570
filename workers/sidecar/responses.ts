// Responses the sidecar makes itself. Each names why in an x-edgemesh-* header, so an operator
// can tell a mesh refusal from an upstream answer.

/** A request carrying this header gets x-edgemesh-route/-subset/-endpoint/-snapshot-* back. */
export const DEBUG_HEADER = "x-edgemesh-debug";

export function meshError(status: number, header: string, reason: string, detail: Record<string, unknown> = {}): Response {
  return new Response(JSON.stringify({ error: reason, ...detail }, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json", [header]: reason, "x-edgemesh-generated": "1" },
  });
}

/** Statuses whose responses have no body (a Response with one cannot be built). */
export function isNullBodyStatus(status: number): boolean {
  return status === 101 || status === 204 || status === 205 || status === 304;
}
