// A response body on its way to the client. Its request holds a breaker slot and its try is
// counted as in flight until the body is done (ended, cancelled by the client, failed), not merely
// until the headers arrived: a long download or event stream is load too. And a body that stops
// moving for the route's streamIdleTimeoutMs is aborted (Envoy's stream_idle_timeout), so an
// upstream that trickles or stalls cannot hold the connection forever.

export interface BodyWatch {
  /** A chunk passed at `nowMs`: the body is alive. */
  onProgress(nowMs: number): void;
  /** The body is done (ended, cancelled, failed or idle too long); called exactly once. */
  onDone(): void;
}

/**
 * `body` as the client will read it, watched: `watch.onProgress` for every chunk, `watch.onDone`
 * once at the end, and an error (the client sees the body cut short) after `idleTimeoutMs` without a
 * chunk. One timer per body, re-armed lazily: a chunk only records the time.
 *
 * A stream implemented here, not a pump into a native IdentityTransformStream: the pump costs a
 * little less CPU, but when the client is gone before the response goes out, workerd cancels a
 * native stream without running any of the request's code again (the pump's cleanup with it),
 * whereas it does call this stream's `cancel`.
 */
export function watchBody(body: ReadableStream<Uint8Array>, idleTimeoutMs: number, watch: BodyWatch): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let lastProgressMs = Date.now();
  let done = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let output!: ReadableStreamDefaultController<Uint8Array>;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    watch.onDone();
  };
  const checkIdle = () => {
    if (done) return;
    const idleMs = Date.now() - lastProgressMs;
    if (idleMs < idleTimeoutMs) {
      timer = setTimeout(checkIdle, idleTimeoutMs - idleMs);
      return;
    }
    const reason = new Error(`stream idle timeout: no data for ${idleTimeoutMs} ms`);
    output.error(reason);
    reader.cancel(reason).catch(() => {});
    finish();
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      output = controller;
      timer = setTimeout(checkIdle, idleTimeoutMs);
    },
    async pull(controller) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        finish();
        throw err;
      }
      if (done) return; // timed out while waiting: the stream is already errored
      if (next.done) {
        finish();
        controller.close();
        return;
      }
      lastProgressMs = Date.now();
      watch.onProgress(lastProgressMs);
      controller.enqueue(next.value);
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
}
