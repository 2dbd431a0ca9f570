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

/** Why a body to buffer could not be had; nothing is sent upstream then. */
export type BodyFailure = { kind: "failed"; why: "too-slow" | "broken" };

/** The body did not arrive before the route's deadline. */
export const BODY_TOO_SLOW: BodyFailure = Object.freeze({ kind: "failed", why: "too-slow" });
/** The upload broke off (the client went away mid-body). */
export const BODY_BROKEN: BodyFailure = Object.freeze({ kind: "failed", why: "broken" });

/**
 * Reads the body up to `limitBytes`, by `deadlineMs` at the latest: reading it counts against the
 * route's deadline, so a slow upload cannot make the sidecar send a try after the client was told
 * it timed out. When the body turns out larger than the limit, what was read is put back in front
 * of the rest, so the upstream receives the body exactly as sent.
 */
export async function planBody(body: ReadableStream<Uint8Array> | null, contentLength: string | null, limitBytes: number, deadlineMs: number): Promise<BodyPlan | BodyFailure> {
  if (body === null) return { kind: "none" };
  if (contentLength !== null && Number(contentLength) > limitBytes) return { kind: "stream", stream: body };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), Math.max(0, deadlineMs - Date.now()))));
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array> | "late";
      try {
        next = await Promise.race([reader.read(), late]);
      } catch {
        return BODY_BROKEN;
      }
      if (next === "late") {
        reader.cancel("the request body did not arrive before the route's deadline").catch(() => {});
        return BODY_TOO_SLOW;
      }
      if (next.done) return { kind: "buffered", bytes: concat(chunks, total) };
      chunks.push(next.value);
      total += next.value.byteLength;
      if (total > limitBytes) break;
    }
  } finally {
    clearTimeout(timer);
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
