import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope as connectEnvelope, encodeEnvelopes } from "@connectrpc/connect/protocol";
import { endStreamToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { describe, expect, it } from "vitest";
import { GrpcCode } from "../../workers/sidecar/grpc/codes.ts";
import { encodeBase64, FLAG_COMPRESSED, FLAG_END_STREAM, FLAG_TRAILER } from "../../workers/sidecar/grpc/envelope.ts";
import { inspectRpcResponse, type RpcResponseInspection } from "../../workers/sidecar/grpc/inspect.ts";
import { detectRpc, type RpcCall } from "../../workers/sidecar/grpc/protocol.ts";
import { statusFromConnectError, statusFromEndStream, statusFromHeaders, statusFromTrailer } from "../../workers/sidecar/grpc/status.ts";

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

describe("inspectRpcResponse", () => {
  it("passes every chunk on as it comes and reports the trailer's status, even cut across chunks", async () => {
    const src = manualBody();
    const inspection = await inspectRpcResponse(GRPC_WEB, new Response(src.body, { headers: { "content-type": "application/grpc-web+proto" } }));
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

  it("answers at once from the headers of a trailers-only response, leaving the response as it is", async () => {
    const response = new Response(null, { headers: { "grpc-status": "7", "grpc-message": "nope" } });
    const inspection = await inspectRpcResponse(GRPC_WEB, response, { peek: true });
    expect(inspection.response).toBe(response);
    expect(inspection.early).toMatchObject({ code: GrpcCode.PERMISSION_DENIED, message: "nope" });
    expect(await inspection.final).toBe(inspection.early);
  });

  it("peeks an error that comes as the first frame, and replays the same bytes", async () => {
    const bytes = encodeEnvelopes({ flags: FLAG_TRAILER, data: trailer(14, "try elsewhere") });
    const inspection = await inspectRpcResponse(GRPC_WEB, new Response(bytes), { peek: true });
    expect(inspection.early).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "trailer" });
    expect(await readAll(inspection.response)).toEqual(bytes);
    expect((await inspection.final).code).toBe(GrpcCode.UNAVAILABLE);
  });

  it("peeks no further than the first frame when it is a message", async () => {
    const src = manualBody();
    const message = encodeEnvelopes(dataFrame(4));
    src.push(message.subarray(0, 2));
    src.push(message.subarray(2));
    const inspection = await inspectRpcResponse(GRPC_WEB, new Response(src.body), { peek: true });
    expect(inspection.early).toBeUndefined();
    const reader = inspection.response.body!.getReader();
    expect((await reader.read()).value).toEqual(message.subarray(0, 2));
    expect((await reader.read()).value).toEqual(message.subarray(2));
    src.push(encodeEnvelopes({ flags: FLAG_TRAILER, data: trailer(0) }));
    src.close();
    while (!(await reader.read()).done);
    expect(await inspection.final).toMatchObject({ code: GrpcCode.OK, source: "trailer" });
  });

  it("reads the unary message and its trailer together when they come in one chunk", async () => {
    const bytes = encodeEnvelopes(dataFrame(10), { flags: FLAG_TRAILER, data: trailer(13, "boom") });
    const inspection = await inspectRpcResponse(GRPC_WEB, new Response(bytes), { peek: true });
    expect(inspection.early).toMatchObject({ code: GrpcCode.INTERNAL, message: "boom" });
  });

  it("decodes gRPC-Web text, framed and padded frame by frame", async () => {
    const body = encodeBase64(connectEnvelope(0, new Uint8Array([1, 2, 3, 4]))) + encodeBase64(connectEnvelope(FLAG_TRAILER, trailer(4, "late")));
    const inspection = await inspectRpcResponse(GRPC_WEB_TEXT, new Response(body));
    expect(await readAll(inspection.response)).toEqual(utf8.encode(body));
    expect(await inspection.final).toMatchObject({ code: GrpcCode.DEADLINE_EXCEEDED, message: "late" });
  });

  it("reads a compressed trailer frame (grpc-encoding: gzip)", async () => {
    const gz = new Uint8Array(await new Response(new Blob([trailer(9, "precondition")]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer());
    const bytes = encodeEnvelopes(dataFrame(1), { flags: FLAG_TRAILER | FLAG_COMPRESSED, data: gz });
    const inspection = await inspectRpcResponse(GRPC_WEB, new Response(bytes, { headers: { "grpc-encoding": "gzip" } }));
    await readAll(inspection.response);
    expect(await inspection.final).toMatchObject({ code: GrpcCode.FAILED_PRECONDITION, message: "precondition" });
  });

  it("says so when a compressed trailer uses an encoding it cannot read", async () => {
    const bytes = encodeEnvelopes({ flags: FLAG_TRAILER | FLAG_COMPRESSED, data: new Uint8Array([1, 2]) });
    const inspection = await inspectRpcResponse(GRPC_WEB, new Response(bytes, { headers: { "grpc-encoding": "snappy" } }), { peek: true });
    expect(inspection.early).toMatchObject({ code: GrpcCode.INTERNAL, message: expect.stringMatching(/snappy/) });
  });

  it("reads Connect streams by their end-of-stream message", async () => {
    const end = utf8.encode(JSON.stringify(endStreamToJson(new Headers(), new ConnectError("later", Code.Unavailable), undefined)));
    const early = await inspectRpcResponse(CONNECT_STREAM, new Response(encodeEnvelopes({ flags: FLAG_END_STREAM, data: end })), { peek: true });
    expect(early.early).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "end-stream" });
    const src = manualBody();
    src.push(encodeEnvelopes(dataFrame(3)));
    const late = await inspectRpcResponse(CONNECT_STREAM, new Response(src.body), { peek: true });
    expect(late.early).toBeUndefined();
    src.push(encodeEnvelopes({ flags: FLAG_END_STREAM, data: utf8.encode("{}") }));
    src.close();
    await readAll(late.response);
    expect(await late.final).toMatchObject({ code: GrpcCode.OK, source: "end-stream" });
  });

  it("reads a Connect unary error from its JSON, peeked whole or followed to its end", async () => {
    const error = () => new Response(errorToJsonBytes(new ConnectError("broken", Code.Internal), undefined), { status: 500, headers: { "content-type": "application/json" } });
    const peeked = await inspectRpcResponse(CONNECT_UNARY, error(), { peek: true });
    expect(peeked.early).toEqual({ code: GrpcCode.INTERNAL, message: "broken", source: "error-body" });
    expect(JSON.parse(await peeked.response.text())).toEqual({ code: "internal", message: "broken" });
    const followed = await inspectRpcResponse(CONNECT_UNARY, error());
    expect(followed.early).toBeUndefined();
    await readAll(followed.response);
    expect(await followed.final).toMatchObject({ code: GrpcCode.INTERNAL, source: "error-body" });
  });

  it("tells a client that went away from an upstream that failed", async () => {
    const gone = manualBody();
    const a = await inspectRpcResponse(GRPC_WEB, new Response(gone.body));
    await a.response.body!.cancel("bye");
    expect(await a.final).toMatchObject({ code: GrpcCode.CANCELLED, source: "aborted" });
    expect(gone.cancelled()).toBe("bye");

    const broken = manualBody();
    const b: RpcResponseInspection = await inspectRpcResponse(GRPC_WEB, new Response(broken.body));
    broken.push(encodeEnvelopes(dataFrame(1)));
    broken.fail(new Error("connection reset"));
    await expect(readAll(b.response)).rejects.toThrow(/reset/);
    expect(await b.final).toMatchObject({ code: GrpcCode.UNAVAILABLE, source: "aborted", message: expect.stringMatching(/reset/) });
  });

  it("reports a body that ends without its status as INTERNAL", async () => {
    const noTrailer = await inspectRpcResponse(GRPC_WEB, new Response(encodeEnvelopes(dataFrame(2))));
    await readAll(noTrailer.response);
    expect(await noTrailer.final).toMatchObject({ code: GrpcCode.INTERNAL, source: "missing", message: "body ended without a trailer frame" });
    const cut = await inspectRpcResponse(GRPC_WEB, new Response(encodeEnvelopes(dataFrame(9)).subarray(0, 7)));
    await readAll(cut.response);
    expect(await cut.final).toMatchObject({ code: GrpcCode.INTERNAL, message: "body ended inside a frame" });
  });

  it("rejects when the body fails while peeking, like a reset try", async () => {
    const src = manualBody();
    src.fail(new Error("connection lost"));
    await expect(inspectRpcResponse(GRPC_WEB, new Response(src.body), { peek: true })).rejects.toThrow(/connection lost/);
  });
});
