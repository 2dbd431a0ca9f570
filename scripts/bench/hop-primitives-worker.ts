// One Worker in front of the benchmark upstream that does one chosen piece of the sidecar's work
// (its VARIANT var) and then forwards, so scripts/bench/hop-profile.ts can price each piece in
// workerd CPU per request against the bare forward ("proxy"). Every variant answers with the
// upstream's response, so the client cannot tell them apart.
interface Env {
  UPSTREAM: Fetcher;
  VARIANT: string;
}

const noop = () => {};
const TICK: unique symbol = Symbol("tick");

function tracked(body: ReadableStream<Uint8Array>, onEnd: () => void): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        controller.enqueue(chunk);
      },
      flush: onEnd,
    }),
  );
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    switch (env.VARIANT) {
      case "proxy":
        return env.UPSTREAM.fetch(request);
      case "url":
        new URL(request.url);
        return env.UPSTREAM.fetch(request);
      case "headers-access":
        if (request.headers === null) throw new Error("unexpected");
        return env.UPSTREAM.fetch(request);
      case "headers-get-1":
        request.headers.get("x-edgemesh-debug");
        return env.UPSTREAM.fetch(request);
      case "headers-get":
        // What matching, debug and fault checks cost: a few lookups of absent headers.
        request.headers.get("x-edgemesh-debug");
        request.headers.get("authorization");
        request.headers.get("content-length");
        return env.UPSTREAM.fetch(request);
      case "headers-scan": {
        let found = false;
        for (const name of request.headers.keys()) if (name.startsWith("x-edgemesh-")) found = true;
        if (found) throw new Error("unexpected");
        return env.UPSTREAM.fetch(request);
      }
      case "new-request":
        return env.UPSTREAM.fetch(new Request(request.url, { method: request.method, headers: request.headers, body: null, redirect: "manual" }));
      case "new-request-signal": {
        const controller = new AbortController();
        return env.UPSTREAM.fetch(new Request(request.url, { method: request.method, headers: request.headers, body: null, redirect: "manual", signal: controller.signal }));
      }
      case "timeout-signal":
        return env.UPSTREAM.fetch(new Request(request.url, { method: request.method, headers: request.headers, body: null, redirect: "manual", signal: AbortSignal.timeout(15_000) }));
      case "timer": {
        const timer = setTimeout(noop, 15_000);
        const res = await env.UPSTREAM.fetch(request);
        clearTimeout(timer);
        return res;
      }
      case "race": {
        let stop: (v: string) => void = noop;
        const stopped = new Promise<string>((resolve) => (stop = resolve));
        const sent = env.UPSTREAM.fetch(request).then((response) => ({ response }), (err: unknown) => ({ err }));
        const first = await Promise.race([sent, stopped]);
        stop("done");
        if (typeof first === "string" || !("response" in first)) throw new Error("unexpected");
        return first.response;
      }
      case "awaits": {
        // Five extra async hops, as a pipeline of async stages makes.
        const step = async (x: number) => x + 1;
        let n = 0;
        for (let i = 0; i < 5; i++) n = await step(n);
        return env.UPSTREAM.fetch(request);
      }
      case "response-wrap": {
        const res = await env.UPSTREAM.fetch(request);
        return new Response(res.body, res);
      }
      case "response-transform": {
        const res = await env.UPSTREAM.fetch(request);
        return new Response(res.body ? tracked(res.body, noop) : null, res);
      }
      case "identity-pipe": {
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const identity = new IdentityTransformStream();
        res.body.pipeTo(identity.writable).then(noop, noop);
        return new Response(identity.readable, res);
      }
      case "identity-pipe-deadline": {
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const identity = new IdentityTransformStream();
        res.body.pipeTo(identity.writable, { signal: AbortSignal.timeout(300_000), preventCancel: true, preventAbort: true, preventClose: true }).then(() => identity.writable.close(), noop);
        return new Response(identity.readable, res);
      }
      case "js-pull-stream": {
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader();
        const stream = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done) controller.close();
            else controller.enqueue(value);
          },
          cancel: (reason) => reader.cancel(reason),
        });
        return new Response(stream, res);
      }
      case "pipe-through-identity": {
        const res = await env.UPSTREAM.fetch(request);
        return new Response(res.body ? res.body.pipeThrough(new IdentityTransformStream()) : null, res);
      }
      case "js-pump-identity": {
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const identity = new IdentityTransformStream();
        const reader = res.body.getReader();
        const writer = identity.writable.getWriter();
        (async () => {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return writer.close();
            await writer.write(value);
          }
        })().catch(noop);
        return new Response(identity.readable, res);
      }
      case "peek-two-reads": {
        // Reads until the body is known to be complete in one chunk, then answers with the bytes.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader();
        const first = await reader.read();
        if (first.done) return new Response(null, res);
        const second = await reader.read();
        if (!second.done) throw new Error("unexpected: more than one chunk");
        return new Response(first.value, res);
      }
      case "settle-timer0": {
        // Reads the body while it is already there (a 0 ms timer marks "would wait"): a complete
        // small body is answered as bytes, so nothing of the request runs after the response.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const tick = new Promise<typeof TICK>((resolve) => (timer = setTimeout(resolve, 0, TICK)));
        const first = await Promise.race([reader.read(), tick]);
        if (first === TICK || first.done) throw new Error("unexpected: no first chunk in time");
        const second = await Promise.race([reader.read(), tick]);
        clearTimeout(timer);
        if (second === TICK || !second.done) throw new Error("unexpected: more than one chunk");
        return new Response(first.value, res);
      }
      case "settle-wait0": {
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader();
        const tick = scheduler.wait(0).then((): typeof TICK => TICK);
        const first = await Promise.race([reader.read(), tick]);
        if (first === TICK || first.done) throw new Error("unexpected: no first chunk in time");
        const second = await Promise.race([reader.read(), tick]);
        if (second === TICK || !second.done) throw new Error("unexpected: more than one chunk");
        return new Response(first.value, res);
      }
      case "read-two-headers": {
        // As peek-two-reads, answering with a fresh Headers copy (what taking off mesh headers costs).
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader();
        const first = await reader.read();
        const second = await reader.read();
        if (first.done || !second.done) throw new Error("unexpected");
        return new Response(first.value, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
      }
      case "request-signal-listen": {
        request.signal.addEventListener("abort", noop, { once: true });
        return env.UPSTREAM.fetch(request);
      }
      case "request-signal-get": {
        if (request.signal.aborted) throw new Error("unexpected");
        return env.UPSTREAM.fetch(request);
      }
      case "fetch-url-init":
        return env.UPSTREAM.fetch(request.url, { method: request.method, headers: request.headers, redirect: "manual" });
      case "fetch-url-init-signal": {
        const controller = new AbortController();
        return env.UPSTREAM.fetch(request.url, { method: request.method, headers: request.headers, redirect: "manual", signal: controller.signal });
      }
      case "abort-controller": {
        const controller = new AbortController();
        if (controller.signal.aborted) throw new Error("unexpected");
        return env.UPSTREAM.fetch(request);
      }
      case "signal-read-two": {
        // As peek-two-reads, with the try's AbortSignal on the upstream request.
        const controller = new AbortController();
        const res = await env.UPSTREAM.fetch(new Request(request.url, { method: request.method, headers: request.headers, redirect: "manual", signal: controller.signal }));
        if (!res.body) return res;
        const reader = res.body.getReader();
        const first = await reader.read();
        const second = await reader.read();
        if (first.done || !second.done) throw new Error("unexpected");
        return new Response(first.value, res);
      }
      case "signal-passthrough": {
        const controller = new AbortController();
        return env.UPSTREAM.fetch(new Request(request.url, { method: request.method, headers: request.headers, redirect: "manual", signal: controller.signal }));
      }
      case "read-two-init": {
        // As peek-two-reads, answering with status and headers given one by one.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader();
        const first = await reader.read();
        const second = await reader.read();
        if (first.done || !second.done) throw new Error("unexpected");
        return new Response(first.value, { status: res.status, statusText: res.statusText, headers: res.headers });
      }
      case "tee-arraybuffer": {
        // One branch read whole (one native operation), raced against a 0 ms timer; the other kept
        // for streaming in case the body is not complete in time.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const [whole, rest] = res.body.tee();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const tick = new Promise<typeof TICK>((resolve) => (timer = setTimeout(resolve, 0, TICK)));
        const got = await Promise.race([new Response(whole).arrayBuffer(), tick]);
        clearTimeout(timer);
        if (got === TICK) throw new Error("unexpected: body not complete in time");
        rest.cancel().catch(noop);
        return new Response(got, res);
      }
      case "tee-only": {
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const [a, b] = res.body.tee();
        a.cancel().catch(noop);
        return new Response(b, res);
      }
      case "byob-at-least": {
        // One BYOB read asking for more than the body can hold: it answers at the body's end.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader({ mode: "byob" }) as ReadableStreamBYOBReader & { readAtLeast(min: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>> };
        const got = await reader.readAtLeast(65537, new Uint8Array(65537));
        if (got.done || got.value.byteLength >= 65537) throw new Error("unexpected");
        return new Response(got.value, res);
      }
      case "byob-small":
      case "byob-small-wait0": {
        // As byob-at-least with a small buffer: a small body's end in one native read.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const reader = res.body.getReader({ mode: "byob" }) as ReadableStreamBYOBReader & { readAtLeast(min: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>> };
        const read = reader.readAtLeast(4097, new Uint8Array(4097));
        const got = env.VARIANT === "byob-small" ? await read : await Promise.race([read, scheduler.wait(0).then((): typeof TICK => TICK)]);
        if (got === TICK || got.done || got.value.byteLength >= 4097) throw new Error("unexpected");
        return new Response(got.value, res);
      }
      case "new-request-read-two":
      case "new-request-manual-read-two": {
        // As peek-two-reads, the upstream request built anew (as the sidecar's tries are).
        const init: RequestInit = { method: request.method, headers: request.headers };
        if (env.VARIANT === "new-request-manual-read-two") init.redirect = "manual";
        const res = await env.UPSTREAM.fetch(new Request(request.url, init));
        if (!res.body) return res;
        const reader = res.body.getReader();
        const first = await reader.read();
        const second = await reader.read();
        if (first.done || !second.done) throw new Error("unexpected");
        return new Response(first.value, res);
      }
      case "pipe-js-writable": {
        // The runtime pumps the body into a JavaScript sink that sees each chunk and passes it on
        // to a native stream the client reads: progress per chunk without JavaScript reads.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const identity = new IdentityTransformStream();
        const writer = identity.writable.getWriter();
        let lastChunkMs = 0;
        const sink = new WritableStream<Uint8Array>({
          write(chunk) {
            lastChunkMs = Date.now();
            return writer.write(chunk);
          },
          close: () => writer.close(),
          abort: (reason) => writer.abort(reason),
        });
        res.body.pipeTo(sink).then(() => void lastChunkMs, noop);
        return new Response(identity.readable, res);
      }
      case "tee-digest": {
        // The body teed: one branch to the client, the other into a native sink that counts bytes
        // (DigestStream.bytesWritten) and settles at the end, all without JavaScript per chunk.
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const [toClient, watched] = res.body.tee();
        const sink = new crypto.DigestStream("MD5");
        ctx.waitUntil(watched.pipeTo(sink).then(noop, noop));
        return new Response(toClient, res);
      }
      case "identity-pipe-waituntil": {
        const res = await env.UPSTREAM.fetch(request);
        if (!res.body) return res;
        const identity = new IdentityTransformStream();
        ctx.waitUntil(res.body.pipeTo(identity.writable).then(noop, noop));
        return new Response(identity.readable, res);
      }
      case "buffer-body": {
        const res = await env.UPSTREAM.fetch(request);
        return new Response(await res.arrayBuffer(), res);
      }
      default:
        return new Response(`unknown variant ${env.VARIANT}`, { status: 500 });
    }
  },
} satisfies ExportedHandler<Env>;
