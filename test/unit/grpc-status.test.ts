import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope as connectEnvelope, encodeEnvelopes } from "@connectrpc/connect/protocol";
import { endStreamToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { describe, expect, it } from "vitest";
import { GrpcCode } from "../../workers/sidecar/grpc/codes.ts";
import { encodeBase64, FLAG_COMPRESSED, FLAG_END_STREAM, FLAG_TRAILER } from "../../workers/sidecar/grpc/envelope.ts";
import { DEFAULT_MAX_STATUS_BYTES, finalStatus, readRpcAnswer } from "../../workers/sidecar/grpc/inspect.ts";
import { detectRpc, type RpcCall } from "../../workers/sidecar/grpc/protocol.ts";
import { statusFromConnectError, statusFromEndStream, statusFromHeaders, statusFromTrailer, type RpcStatus } from "../../workers/sidecar/grpc/status.ts";
import { bytesOf, continueBody } from "../../workers/sidecar/stream.ts";

const utf8 = new TextEncoder();
const callOf = (contentType: string, extra: Record<string, string> = {}): RpcCall =>
  detectRpc("POST", "/pkg.Svc/Do", "", new Headers({ "content-type": contentType, ...extra }))!;
const GRPC_WEB = callOf("application/grpc-web+proto");
const GRPC_WEB_TEXT = callOf("application/grpc-web-text");
const CONNECT_STREAM = callOf("application/connect+proto");
const CONNECT_UNARY = callOf("application/json", { "connect-protocol-version": "1" });

const trailer = (status: number, message?: string) =>
  utf8.encode(`grpc-status: ${status}\r\n${message === undefined ? "" : `grpc-message: ${encodeURIComponent(message)}\r\n`}`);
const dataFrame = (n: number) => ({ flags: 0, data: new Uint8Array(n).fill(7) });

/** A response body the test feeds by hand, to see what the consumer gets and when. */
function manualBody() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  let cancelledWith: unknown;
  const body = new ReadableStream<Uint8Array>({
    pull: async (c) => {
      const r = await reader.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel: (reason) => void (cancelledWith = reason),
  }, { highWaterMark: 0 });
  const reader = stream.getReader();
  return { body, push: (b: Uint8Array) => controller.enqueue(b), close: () => controller.close(), fail: (e: Error) => controller.error(e), cancelled: () => cancelledWith };
}

async function readAll(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

interface Inspection {
  /** The status known when the answer was passed on (what retries act on). */
  early: RpcStatus | undefined;
  /** What the client gets. */
  response: Response;
  final: Promise<RpcStatus>;
}

/**
 * An RPC answer through the sidecar's one body path, composed as proxy.ts and index.ts compose it:
 * read what is there (peeking for the first frame when asked), then the rest streams with every
 * chunk fed to the status reader, and the final status comes when the body is done.
 */
async function throughSidecar(call: RpcCall, upstream: Response, options: { peek?: boolean } = {}): Promise<Inspection> {
  const answer = await readRpcAnswer(call, upstream, options.peek ? { maxBytes: DEFAULT_MAX_STATUS_BYTES, stop: new Promise(() => {}) } : undefined);
  if (typeof answer === "string") throw new Error(`the answer was not read: ${answer}`);
  let settle!: (status: RpcStatus) => void;
  const final = new Promise<RpcStatus>((resolve) => (settle = resolve));
  const start = answer.body;
  let body: BodyInit | null = null;
  if (start !== undefined && !start.complete) {
    body = continueBody(start, 0, {
      onChunk: (chunk) => answer.reader.push(chunk),
      keepUntil: () => {},
      onDone: (cut, reason) => void finalStatus(answer.reader, cut, reason).then((status) => settle(answer.status ?? status)),
    });
  } else {
    if (start !== undefined) body = bytesOf(start);
    settle(answer.status!);
  }
  return { early: answer.status, response: new Response(body, upstream), final };
}

const isSettled = async (p: Promise<unknown>) => (await Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))])) as boolean;

describe("status parsers", () => {
  it("read a trailers-only response and a non-200 gRPC-Web answer from the headers", () => {
    expect(statusFromHeaders(GRPC_WEB, 200, new Headers({ "grpc-status": "14", "grpc-message": "no%20way%20%E2%9C%97" })))
      .toEqual({ code: GrpcCode.UNAVAILABLE, message: "no way ✗", source: "header" });
    expect(statusFromHeaders(GRPC_WEB, 503, new Headers())).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "http-status" });
    expect(statusFromHeaders(GRPC_WEB, 404, new Headers())).toMatchObject({ code: GrpcCode.UNIMPLEMENTED });
    expect(statusFromHeaders(GRPC_WEB, 200, new Headers())).toBeUndefined();
    expect(statusFromHeaders(CONNECT_UNARY, 200, new Headers())).toMatchObject({ code: GrpcCode.OK });
    expect(statusFromHeaders(CONNECT_UNARY, 503, new Headers())).toBeUndefined();
    expect(statusFromHeaders(CONNECT_STREAM, 200, new Headers())).toBeUndefined();
    expect(statusFromHeaders(CONNECT_STREAM, 415, new Headers())).toMatchObject({ code: GrpcCode.UNKNOWN, source: "http-status" });
  });

  it("read the trailer frame that Connect's gRPC-Web server writes", () => {
    const headers = new Headers({ "Grpc-Status": "8", "grpc-message": encodeURIComponent("slow down: 5/s") });
    expect(statusFromTrailer(trailerSerialize(headers))).toEqual({ code: GrpcCode.RESOURCE_EXHAUSTED, message: "slow down: 5/s", source: "trailer" });
    expect(statusFromTrailer(utf8.encode("GRPC-STATUS:0\r\n"))).toMatchObject({ code: GrpcCode.OK });
    expect(statusFromTrailer(utf8.encode("grpc-status: 77\r\n"))).toMatchObject({ code: GrpcCode.UNKNOWN });
    expect(statusFromTrailer(utf8.encode("x-other: 1\r\n"))).toMatchObject({ code: GrpcCode.INTERNAL, message: "trailer frame without grpc-status" });
  });

  it("read Connect's end-of-stream message", () => {
    const end = (error?: ConnectError) => utf8.encode(JSON.stringify(endStreamToJson(new Headers(), error, undefined)));
    expect(statusFromEndStream(end())).toEqual({ code: GrpcCode.OK, message: "", source: "end-stream" });
    expect(statusFromEndStream(end(new ConnectError("gone", Code.Unavailable)))).toEqual({ code: GrpcCode.UNAVAILABLE, message: "gone", source: "end-stream" });
    expect(statusFromEndStream(utf8.encode('{"error":{"code":"bogus"}}'))).toMatchObject({ code: GrpcCode.UNKNOWN });
    expect(statusFromEndStream(utf8.encode("{"))).toMatchObject({ code: GrpcCode.INTERNAL });
  });

  it("read a Connect unary error, falling back to the HTTP status for what is not one", () => {
    const body = errorToJsonBytes(new ConnectError("too many", Code.ResourceExhausted), undefined);
    expect(statusFromConnectError(429, body)).toEqual({ code: GrpcCode.RESOURCE_EXHAUSTED, message: "too many", source: "error-body" });
    expect(statusFromConnectError(502, utf8.encode("<html>Bad Gateway</html>"))).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "http-status" });
    expect(statusFromConnectError(500, utf8.encode('{"code":"nope"}'))).toMatchObject({ code: GrpcCode.UNKNOWN, source: "http-status" });
  });
});

describe("an RPC answer through the sidecar's body path", () => {
  it("passes every chunk on as it comes and reports the trailer's status, even cut across chunks", async () => {
    const src = manualBody();
    const inspection = await throughSidecar(GRPC_WEB, new Response(src.body, { headers: { "content-type": "application/grpc-web+proto" } }));
    expect(inspection.early).toBeUndefined();
    const reader = inspection.response.body!.getReader();
    const first = encodeEnvelopes(dataFrame(3));
    src.push(first);
    // The consumer gets the first message while the upstream has sent nothing more.
    expect((await reader.read()).value).toEqual(first);
    expect(await isSettled(inspection.final)).toBe(false);
    const end = encodeEnvelopes(dataFrame(2), { flags: FLAG_TRAILER, data: trailer(14, "backend down") });
    src.push(end.subarray(0, 9));
    expect((await reader.read()).value).toEqual(end.subarray(0, 9));
    src.push(end.subarray(9));
    expect((await reader.read()).value).toEqual(end.subarray(9));
    src.close();
    expect((await reader.read()).done).toBe(true);
    expect(await inspection.final).toEqual({ code: GrpcCode.UNAVAILABLE, message: "backend down", source: "trailer" });
  });

  it("answers at once from the headers of a trailers-only response", async () => {
    const inspection = await throughSidecar(GRPC_WEB, new Response(null, { headers: { "grpc-status": "7", "grpc-message": "nope" } }), { peek: true });
    expect(inspection.early).toMatchObject({ code: GrpcCode.PERMISSION_DENIED, message: "nope", source: "header" });
    expect(await inspection.final).toBe(inspection.early);
    expect(inspection.response.headers.get("grpc-status")).toBe("7");
  });

  it("knows the status of a body that is whole on arrival without peeking, and passes the same bytes", async () => {
    const bytes = encodeEnvelopes(dataFrame(10), { flags: FLAG_TRAILER, data: trailer(13, "boom") });
    const inspection = await throughSidecar(GRPC_WEB, new Response(bytes));
    expect(inspection.early).toMatchObject({ code: GrpcCode.INTERNAL, message: "boom" });
    expect(await readAll(inspection.response)).toEqual(bytes);
  });

  it("peeks an error that comes as the first frame after the headers, and passes the same bytes", async () => {
    const src = manualBody();
    const pending = throughSidecar(GRPC_WEB, new Response(src.body), { peek: true });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const bytes = encodeEnvelopes({ flags: FLAG_TRAILER, data: trailer(14, "try elsewhere") });
    src.push(bytes.subarray(0, 3));
    src.push(bytes.subarray(3));
    src.close();
    const inspection = await pending;
    expect(inspection.early).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "trailer" });
    expect(await readAll(inspection.response)).toEqual(bytes);
    expect((await inspection.final).code).toBe(GrpcCode.UNAVAILABLE);
  });

  it("peeks no further than the first frame when it is a message", async () => {
    const src = manualBody();
    const message = encodeEnvelopes(dataFrame(4));
    const pending = throughSidecar(GRPC_WEB, new Response(src.body), { peek: true });
    await new Promise((resolve) => setTimeout(resolve, 5));
    src.push(message.subarray(0, 2));
    await new Promise((resolve) => setTimeout(resolve, 5));
    src.push(message.subarray(2));
    const inspection = await pending;
    expect(inspection.early).toBeUndefined();
    const reader = inspection.response.body!.getReader();
    expect((await reader.read()).value).toEqual(message.subarray(0, 2));
    expect((await reader.read()).value).toEqual(message.subarray(2));
    src.push(encodeEnvelopes({ flags: FLAG_TRAILER, data: trailer(0) }));
    src.close();
    while (!(await reader.read()).done);
    expect(await inspection.final).toMatchObject({ code: GrpcCode.OK, source: "trailer" });
  });

  it("decodes gRPC-Web text, framed and padded frame by frame", async () => {
    const body = encodeBase64(connectEnvelope(0, new Uint8Array([1, 2, 3, 4]))) + encodeBase64(connectEnvelope(FLAG_TRAILER, trailer(4, "late")));
    const inspection = await throughSidecar(GRPC_WEB_TEXT, new Response(body));
    expect(await readAll(inspection.response)).toEqual(utf8.encode(body));
    expect(await inspection.final).toMatchObject({ code: GrpcCode.DEADLINE_EXCEEDED, message: "late" });
  });

  it("reads a compressed trailer frame (grpc-encoding: gzip)", async () => {
    const gz = new Uint8Array(await new Response(new Blob([trailer(9, "precondition")]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    const bytes = encodeEnvelopes(dataFrame(1), { flags: FLAG_TRAILER | FLAG_COMPRESSED, data: gz });
    const inspection = await throughSidecar(GRPC_WEB, new Response(bytes, { headers: { "grpc-encoding": "gzip" } }));
    await readAll(inspection.response);
    expect(await inspection.final).toMatchObject({ code: GrpcCode.FAILED_PRECONDITION, message: "precondition" });
  });

  it("says so when a compressed trailer uses an encoding it cannot read", async () => {
    const bytes = encodeEnvelopes({ flags: FLAG_TRAILER | FLAG_COMPRESSED, data: new Uint8Array([1, 2]) });
    const inspection = await throughSidecar(GRPC_WEB, new Response(bytes, { headers: { "grpc-encoding": "snappy" } }), { peek: true });
    expect(inspection.early).toMatchObject({ code: GrpcCode.INTERNAL, message: expect.stringMatching(/snappy/) });
  });

  it("reads Connect streams by their end-of-stream message", async () => {
    const end = utf8.encode(JSON.stringify(endStreamToJson(new Headers(), new ConnectError("later", Code.Unavailable), undefined)));
    const early = await throughSidecar(CONNECT_STREAM, new Response(encodeEnvelopes({ flags: FLAG_END_STREAM, data: end })), { peek: true });
    expect(early.early).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "end-stream" });
    const src = manualBody();
    src.push(encodeEnvelopes(dataFrame(3)));
    const late = await throughSidecar(CONNECT_STREAM, new Response(src.body), { peek: true });
    expect(late.early).toBeUndefined();
    src.push(encodeEnvelopes({ flags: FLAG_END_STREAM, data: utf8.encode("{}") }));
    src.close();
    await readAll(late.response);
    expect(await late.final).toMatchObject({ code: GrpcCode.OK, source: "end-stream" });
  });

  it("reads a Connect unary error from its JSON, whole on arrival or followed to its end", async () => {
    const json = errorToJsonBytes(new ConnectError("broken", Code.Internal), undefined);
    const whole = await throughSidecar(CONNECT_UNARY, new Response(json, { status: 500, headers: { "content-type": "application/json" } }));
    expect(whole.early).toEqual({ code: GrpcCode.INTERNAL, message: "broken", source: "error-body" });
    expect(JSON.parse(await whole.response.text())).toEqual({ code: "internal", message: "broken" });
    const src = manualBody();
    src.push(json.subarray(0, 5));
    const followed = await throughSidecar(CONNECT_UNARY, new Response(src.body, { status: 500 }));
    expect(followed.early).toBeUndefined();
    src.push(json.subarray(5));
    src.close();
    await readAll(followed.response);
    expect(await followed.final).toMatchObject({ code: GrpcCode.INTERNAL, source: "error-body" });
  });

  it("tells a client that went away from an upstream that failed", async () => {
    const gone = manualBody();
    const a = await throughSidecar(GRPC_WEB, new Response(gone.body));
    await a.response.body!.cancel("bye");
    expect(await a.final).toMatchObject({ code: GrpcCode.CANCELLED, source: "aborted" });
    expect(gone.cancelled()).toBe("bye");

    const broken = manualBody();
    const b = await throughSidecar(GRPC_WEB, new Response(broken.body));
    broken.push(encodeEnvelopes(dataFrame(1)));
    broken.fail(new Error("connection reset"));
    await expect(readAll(b.response)).rejects.toThrow(/reset/);
    expect(await b.final).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "aborted", message: expect.stringMatching(/reset/) });
  });

  it("reports a body that ends without its status as INTERNAL", async () => {
    const noTrailer = await throughSidecar(GRPC_WEB, new Response(encodeEnvelopes(dataFrame(2))));
    await readAll(noTrailer.response);
    expect(await noTrailer.final).toMatchObject({ code: GrpcCode.INTERNAL, source: "missing", message: "body ended without a trailer frame" });
    const cut = await throughSidecar(GRPC_WEB, new Response(encodeEnvelopes(dataFrame(9)).subarray(0, 7)));
    await readAll(cut.response);
    expect(await cut.final).toMatchObject({ code: GrpcCode.INTERNAL, message: "body ended inside a frame" });
  });

  it("answers failed (a reset try) when the body fails while peeking, and stopped at the try's deadline", async () => {
    const src = manualBody();
    const pending = readRpcAnswer(GRPC_WEB, new Response(src.body), { maxBytes: DEFAULT_MAX_STATUS_BYTES, stop: new Promise(() => {}) });
    await new Promise((resolve) => setTimeout(resolve, 5));
    src.fail(new Error("connection lost"));
    expect(await pending).toBe("failed");
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const slow = manualBody();
    const waiting = readRpcAnswer(GRPC_WEB, new Response(slow.body), { maxBytes: DEFAULT_MAX_STATUS_BYTES, stop: stopped });
    stop();
    expect(await waiting).toBe("stopped");
    expect(slow.cancelled()).toMatch(/does not pass this answer on/);
  });
});
