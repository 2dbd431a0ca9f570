// Classifying an RPC response by its gRPC status without holding the stream back. The sidecar has
// one body path for every answer (stream.ts): what is already there is read at once, the rest is
// passed on chunk by chunk as the client reads. An RPC's status reader rides along that same path:
// it is fed the start that was read and then every chunk as it passes, and reports the status when
// it shows up (a trailer frame, an end-of-stream message, the end of a Connect error) or when the
// body ends or is cut. No second stream, nothing held back.
//
// When a retry on a gRPC code is possible, the start of the body is peeked (`readRpcAnswer`): just
// enough to see whether the first frame is already the trailer (how gRPC-Web servers such as
// Connect's answer an error) or to read a Connect unary error whole. That is the only way a retry
// can act on a gRPC code, because once a message has been passed on the call cannot be replayed.
// It holds back at most the first frame.
import { discardBody, MAX_AVAILABLE_BYTES, readAvailable, readMore, type BodyCut, type BodyStart } from "../stream.ts";
import { GrpcCode } from "./codes.ts";
import { Base64Decoder, EnvelopeScanner, FLAG_COMPRESSED, FLAG_END_STREAM, FLAG_TRAILER } from "./envelope.ts";
import type { RpcCall } from "./protocol.ts";
import { statusFromConnectError, statusFromEndStream, statusFromHeaders, statusFromTrailer, type RpcStatus } from "./status.ts";

/** Trailer frames, end-of-stream messages and Connect error bodies larger than this are not read. */
export const DEFAULT_MAX_STATUS_BYTES = 64 * 1024;

async function decompress(bytes: Uint8Array, encoding: string, maxBytes: number): Promise<Uint8Array | undefined> {
  if (encoding !== "gzip" && encoding !== "deflate") return undefined;
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(encoding)).getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    // A few KiB that inflate without bound must not cost the isolate its memory.
    if (total > maxBytes) {
      await reader.cancel();
      throw new Error(`inflates to more than ${maxBytes} bytes`);
    }
    parts.push(value);
  }
  return concat(parts, total);
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Follows one response body chunk by chunk and works out its gRPC status. Feed it every chunk in
 * order with `push`, then `end()` (the body finished) or `abort()` (it was cut).
 */
export class RpcBodyReader {
  /** The status once known; set as soon as the headers or a frame tell it. */
  status: RpcStatus | undefined;
  private readonly scanner: EnvelopeScanner | undefined;
  private readonly base64: Base64Decoder | undefined;
  /** A Connect unary error body, kept until the end (undefined when not wanted or too large). */
  private errorBody: Uint8Array[] | undefined;
  private errorBodyBytes = 0;
  private decoding: Promise<void> | undefined;

  constructor(
    private readonly call: RpcCall,
    private readonly httpStatus: number,
    private readonly headers: Headers,
    private readonly maxStatusBytes = DEFAULT_MAX_STATUS_BYTES,
  ) {
    this.status = statusFromHeaders(call, httpStatus, headers);
    if (this.status) return;
    if (call.protocol === "connect-unary") {
      this.errorBody = [];
      return;
    }
    const statusFlag = call.protocol === "connect-stream" ? FLAG_END_STREAM : FLAG_TRAILER;
    this.scanner = new EnvelopeScanner((flags) => (flags & statusFlag) !== 0, (flags, payload) => this.onStatusFrame(flags, payload), maxStatusBytes);
    if (call.protocol === "grpc-web-text") this.base64 = new Base64Decoder();
  }

  /** Frames completed so far (0 for Connect unary, which has none). */
  get framesSeen(): number {
    return this.scanner?.framesSeen ?? 0;
  }

  push(chunk: Uint8Array): void {
    if (this.status !== undefined || this.decoding !== undefined) return;
    if (this.errorBody) {
      this.errorBodyBytes += chunk.byteLength;
      if (this.errorBodyBytes <= this.maxStatusBytes) this.errorBody.push(chunk);
      return;
    }
    let bytes = chunk;
    if (this.base64) {
      try {
        bytes = this.base64.decode(chunk);
      } catch (err) {
        this.status = { code: GrpcCode.INTERNAL, message: `gRPC-Web text body: ${(err as Error).message}`, source: "missing" };
        return;
      }
    }
    this.scanner!.push(bytes);
  }

  private onStatusFrame(flags: number, payload: Uint8Array | undefined): void {
    if (this.status !== undefined || this.decoding !== undefined) return;
    const endStream = this.call.protocol === "connect-stream";
    const what = endStream ? "end-of-stream message" : "trailer frame";
    const source = endStream ? "end-stream" : "trailer";
    if (payload === undefined) {
      this.status = { code: GrpcCode.INTERNAL, message: `${what} larger than ${this.maxStatusBytes} bytes`, source };
      return;
    }
    const parse = endStream ? statusFromEndStream : statusFromTrailer;
    if ((flags & FLAG_COMPRESSED) === 0) {
      this.status = parse(payload);
      return;
    }
    const encoding = (this.headers.get(endStream ? "connect-content-encoding" : "grpc-encoding") ?? "identity").toLowerCase();
    this.decoding = decompress(payload, encoding, this.maxStatusBytes).then(
      (plain) => {
        this.status = plain ? parse(plain) : { code: GrpcCode.INTERNAL, message: `${what} compressed with "${encoding}", which the sidecar cannot read`, source };
      },
      (err: unknown) => {
        this.status = { code: GrpcCode.INTERNAL, message: `${what} does not decompress: ${(err as Error).message}`, source };
      },
    );
  }

  /** The status known so far, once a compressed trailer (if any) is decoded. */
  async settled(): Promise<RpcStatus | undefined> {
    if (this.decoding) await this.decoding;
    return this.status;
  }

  /** The body ended normally: its status, or why it has none. */
  async end(): Promise<RpcStatus> {
    const known = await this.settled();
    if (known) return known;
    if (this.errorBody) return this.connectError();
    const midFrame = this.scanner?.midFrame ?? false;
    const expected = this.call.protocol === "connect-stream" ? "an end-of-stream message" : this.call.protocol === "grpc" ? "grpc-status (native gRPC sends it in HTTP trailers, which never reach a Worker)" : "a trailer frame";
    // gRPC clients read a stream that ends without its status as INTERNAL.
    return (this.status = { code: GrpcCode.INTERNAL, message: midFrame ? "body ended inside a frame" : `body ended without ${expected}`, source: "missing" });
  }

  private async connectError(): Promise<RpcStatus> {
    if (this.errorBodyBytes > this.maxStatusBytes) {
      return (this.status = { ...statusFromConnectError(this.httpStatus, new Uint8Array()), message: `error body larger than ${this.maxStatusBytes} bytes` });
    }
    const body = concat(this.errorBody!, this.errorBodyBytes);
    let status = statusFromConnectError(this.httpStatus, body);
    const encoding = this.headers.get("content-encoding")?.toLowerCase();
    // Behind fetch the body usually arrives already decoded; over some paths it does not.
    if (status.source !== "error-body" && encoding !== undefined && encoding !== "identity") {
      const plain = await decompress(body, encoding, this.maxStatusBytes).catch(() => undefined);
      if (plain) status = statusFromConnectError(this.httpStatus, plain);
    }
    return (this.status = status);
  }

  /** The body was cut: by the client going away (CANCELLED) or by the upstream failing (UNAVAILABLE). */
  abort(by: "client" | "upstream", reason: unknown): RpcStatus {
    if (this.status) return this.status;
    const detail = reason instanceof Error ? reason.message : String(reason);
    return (this.status = by === "client"
      ? { code: GrpcCode.CANCELLED, message: `client went away: ${detail}`, source: "aborted" }
      : { code: GrpcCode.UNAVAILABLE, message: `upstream body failed: ${detail}`, source: "aborted" });
  }
}

/** An RPC answer as far as the sidecar read it when its headers came. */
export interface RpcAnswer {
  /** The body's start (stream.ts); undefined when the answer has no body. */
  body: BodyStart | undefined;
  /** The status reader, fed everything in `body.head`; the rest of the body must be fed to it as it passes. */
  reader: RpcBodyReader;
  /** The status when the headers or that start tell it; undefined: it comes at the end (a stream). */
  status: RpcStatus | undefined;
}

export interface PeekOptions {
  maxBytes: number;
  /** Peeking gives up when this settles (the try's deadline). */
  stop: Promise<unknown>;
}

/**
 * Reads an RPC answer as far as it is already there (readAvailable) and its status when that
 * tells it. With `peek` (a retry on a gRPC code is still possible) it reads on, waiting, until the
 * first frame is complete or the Connect unary error is whole: when that first frame is the
 * trailer or end-of-stream message, the call failed before any message and may be retried.
 * Answers "stopped" when the peek ran into `peek.stop`, and "failed" when the body failed while
 * being peeked (like a reset try); the body is cancelled then.
 */
export async function readRpcAnswer(call: RpcCall, response: Response, peek: PeekOptions | undefined): Promise<RpcAnswer | "stopped" | "failed"> {
  const reader = new RpcBodyReader(call, response.status, response.headers);
  const body = response.body === null ? undefined : await readAvailable(response.body, MAX_AVAILABLE_BYTES);
  let status = await statusOfStart(reader, body);
  if (status === undefined && peek !== undefined && body !== undefined) {
    const peeked = await readMore(body, () => reader.framesSeen > 0 || reader.status !== undefined, peek.maxBytes, peek.stop, (chunk) => reader.push(chunk));
    if (peeked !== "enough") {
      discardBody(body);
      return peeked;
    }
    status = body.complete ? await reader.end() : await reader.settled();
  }
  return { body, reader, status };
}

/** Feeds what readAvailable read to the status reader; the status when the start is the whole body. */
async function statusOfStart(reader: RpcBodyReader, start: BodyStart | undefined): Promise<RpcStatus | undefined> {
  if (reader.status !== undefined) return reader.status;
  if (start === undefined) return reader.end();
  for (const chunk of start.head) reader.push(chunk);
  return start.complete ? reader.end() : reader.settled();
}

/** The status of a body that is done: ended normally, or cut (the client went away, the upstream failed or stalled). */
export function finalStatus(reader: RpcBodyReader, cut: BodyCut | undefined, reason: unknown): Promise<RpcStatus> {
  if (cut === undefined) return reader.end();
  return Promise.resolve(reader.abort(cut === "client" ? "client" : "upstream", reason));
}
