// A response body on its way to the client. Its request holds a breaker slot and its try is
// counted as in flight until the body is done (ended, cancelled by the client, failed), not merely
// until the headers arrived: a long download or event stream is load too. And a body that stops
// moving for the route's streamIdleTimeoutMs is aborted (Envoy's stream_idle_timeout), so an
// upstream that trickles or stalls cannot hold the connection forever.
//
// Watching a body in JavaScript costs about as much CPU as a whole Worker hop, and nearly every
// answer is small and complete by the time its headers are in. So the sidecar first reads what is
// already there (`readAvailable`): when that is the whole body, the client is answered with the
// bytes, and the request has nothing left to hold or watch once it answers. Only a body that is
// still arriving (an event stream, a long download, a slow upstream) goes through the watched
// stream (`continueBody`), which starts with what was read and goes on from the upstream.

/** Bodies up to this size are answered from memory when they are complete on arrival. */
export const MAX_AVAILABLE_BYTES = 64 * 1024;

/** The start of a response body: what was read, and where the rest comes from. */
export interface BodyStart {
  /** Chunks read so far, in order. */
  head: Uint8Array[];
  headBytes: number;
  /** `head` is the whole body. */
  complete: boolean;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /**
   * A read that had not answered when the sidecar stopped waiting (or that failed): the body goes
   * on with it, so no byte is lost and a failure reaches the client where it happened.
   */
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
}

const WOULD_WAIT: unique symbol = Symbol("would wait");
type WouldWait = typeof WOULD_WAIT;

/**
 * Reads `body` while its bytes are already there, up to about `maxBytes`, and never waits for
 * more: a read that has not answered within one turn of the event loop (a 0 ms timer) is left
 * pending. A complete small body comes back `complete`; an event stream whose next event is not
 * there yet comes back at once with what it had, so its first bytes are never held back.
 */
export async function readAvailable(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<BodyStart> {
  const reader = body.getReader();
  const start: BodyStart = { head: [], headBytes: 0, complete: false, reader, pending: undefined };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const wouldWait = new Promise<WouldWait>((resolve) => (timer = setTimeout(resolve, 0, WOULD_WAIT)));
  try {
    while (start.headBytes < maxBytes) {
      const read = reader.read();
      let next: ReadableStreamReadResult<Uint8Array> | WouldWait;
      try {
        next = await Promise.race([read, wouldWait]);
      } catch {
        // The upstream's body failed: the client gets what came before, then the failure.
        start.pending = read;
        return start;
      }
      if (next === WOULD_WAIT) {
        start.pending = read;
        return start;
      }
      if (next.done) {
        start.complete = true;
        return start;
      }
      start.head.push(next.value);
      start.headBytes += next.value.byteLength;
    }
    return start;
  } finally {
    clearTimeout(timer);
  }
}

const STOPPED: unique symbol = Symbol("stopped");

/**
 * Reads on (waiting, unlike readAvailable) until `enough()` holds, the body is complete or
 * `maxBytes` are held ("enough"), `stop` settles ("stopped") or the body fails ("failed"; the
 * failure stays pending for whoever reads on). For holding back the start of an answer that may
 * still be retried (an RPC whose first frame says whether it failed).
 */
export async function readMore(start: BodyStart, enough: () => boolean, maxBytes: number, stop: Promise<unknown>, onChunk: (chunk: Uint8Array) => void): Promise<"enough" | "stopped" | "failed"> {
  const stopped = stop.then((): typeof STOPPED => STOPPED);
  while (!start.complete && !enough() && start.headBytes <= maxBytes) {
    const read = start.pending ?? start.reader.read();
    start.pending = read;
    let next: ReadableStreamReadResult<Uint8Array> | typeof STOPPED;
    try {
      next = await Promise.race([read, stopped]);
    } catch {
      return "failed";
    }
    if (next === STOPPED) return "stopped";
    start.pending = undefined;
    if (next.done) start.complete = true;
    else {
      start.head.push(next.value);
      start.headBytes += next.value.byteLength;
      onChunk(next.value);
    }
  }
  return "enough";
}

/** The whole body of a complete start, as one array. */
export function bytesOf(start: BodyStart): Uint8Array {
  const { head } = start;
  if (head.length === 1) return head[0]!;
  const out = new Uint8Array(start.headBytes);
  let at = 0;
  for (const chunk of head) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Gives up on a body nobody will read (a retried-away answer, a peek past the try's deadline). */
export function discardBody(start: BodyStart): void {
  start.reader.cancel("the sidecar does not pass this answer on").catch(() => {});
}

/** Why a watched body did not end normally. */
export type BodyCut = "client" | "upstream" | "idle";

export interface BodyWatch {
  /** A chunk read after the start's head, as it is passed on. */
  onChunk(chunk: Uint8Array): void;
  /** The body is still moving: what it holds must last until at least `aliveUntilMs` (one idle timeout ahead). */
  keepUntil(aliveUntilMs: number): void;
  /** The body is done; called exactly once. `cut` is undefined when it ended normally. */
  onDone(cut: BodyCut | undefined, reason: unknown): void;
}

/**
 * The rest of a body as the client will read it: the start's head, then the upstream's chunks as
 * they come, each handed to `watch.onChunk`; `watch.onDone` once at the end; and, with
 * `idleTimeoutMs` above 0, an error (the client sees the body cut short) after that long without
 * a chunk. Pulled only as the client reads (nothing is read ahead). One timer per body, re-armed
 * lazily: a chunk only records the time, and the timer, when it fires, either aborts the body or
 * moves the watch's deadline (keepUntil) and sleeps on.
 */
export function continueBody(start: BodyStart, idleTimeoutMs: number, watch: BodyWatch): ReadableStream<Uint8Array> {
  const { head, reader } = start;
  let pending = start.pending;
  let served = 0;
  let lastProgressMs = Date.now();
  let done = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let output!: ReadableStreamDefaultController<Uint8Array>;
  const finish = (cut: BodyCut | undefined, reason: unknown) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    watch.onDone(cut, reason);
  };
  const checkIdle = () => {
    if (done) return;
    const idleMs = Date.now() - lastProgressMs;
    if (idleMs < idleTimeoutMs) {
      watch.keepUntil(lastProgressMs + idleTimeoutMs);
      timer = setTimeout(checkIdle, idleTimeoutMs - idleMs);
      return;
    }
    const reason = new Error(`stream idle timeout: no data for ${idleTimeoutMs} ms`);
    output.error(reason);
    reader.cancel(reason).catch(() => {});
    finish("idle", reason);
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        output = controller;
        if (idleTimeoutMs > 0) {
          watch.keepUntil(lastProgressMs + idleTimeoutMs);
          timer = setTimeout(checkIdle, idleTimeoutMs);
        }
      },
      async pull(controller) {
        if (served < head.length) {
          controller.enqueue(head[served++]!);
          return;
        }
        if (start.complete) {
          controller.close();
          finish(undefined, undefined);
          return;
        }
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await (pending ?? reader.read());
        } catch (err) {
          if (!done) finish("upstream", err);
          throw err;
        }
        pending = undefined;
        if (done) return; // aborted while waiting: the stream is already errored
        if (next.done) {
          controller.close();
          finish(undefined, undefined);
          return;
        }
        lastProgressMs = Date.now();
        watch.onChunk(next.value);
        controller.enqueue(next.value);
      },
      cancel(reason) {
        finish("client", reason);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * `bytes` as a body of no declared length (sent chunked, without content-length), for answers that
 * should keep the form a stream has: gRPC-Web answers, which Cloudflare's gRPC conversion turns
 * back into gRPC only when they are not sent with a length.
 */
export function unsizedBody(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}
