// Request bodies that may be replayed (retries, hedges, mirrors) are buffered up to a limit; a
// larger one is streamed once, untouched, and the request is not replayed.

export type BodyPlan =
  | { kind: "none" }
  | { kind: "buffered"; bytes: Uint8Array }
  /** Too large to buffer (or not worth it): send once as this stream. */
  | { kind: "stream"; stream: ReadableStream<Uint8Array> };

export function isReplayable(plan: BodyPlan): boolean {
  return plan.kind !== "stream";
}

/**
 * Whether a request of this method may carry a body upstream. A GET or HEAD can arrive with one
 * (workerd hands it over), but `new Request` refuses to build one, so the body is dropped.
 */
export function methodAllowsBody(method: string): boolean {
  // fetch normalises these methods' case, so no per-request toUpperCase is needed.
  return method !== "GET" && method !== "HEAD";
}

/** The body to send on one try; a buffered body can be sent any number of times. */
export function bodyForTry(plan: BodyPlan, method: string): BodyInit | null {
  if (plan.kind === "none" || !methodAllowsBody(method)) return null;
  if (plan.kind === "buffered") return plan.bytes;
  return plan.stream;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Reads the body up to `limitBytes`. When it turns out larger, what was read is put back in front
 * of the rest, so the upstream receives the body exactly as sent.
 */
export async function planBody(body: ReadableStream<Uint8Array> | null, contentLength: string | null, limitBytes: number): Promise<BodyPlan> {
  if (body === null) return { kind: "none" };
  if (contentLength !== null && Number(contentLength) > limitBytes) return { kind: "stream", stream: body };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { kind: "buffered", bytes: concat(chunks, total) };
    chunks.push(value);
    total += value.byteLength;
    if (total > limitBytes) break;
  }
  let replayed = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (replayed < chunks.length) {
        controller.enqueue(chunks[replayed++]!);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { kind: "stream", stream };
}
