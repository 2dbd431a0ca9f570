// The length-prefixed frames ("envelopes") that gRPC-Web and Connect streaming bodies are made
// of: one flags byte, a 4-byte big-endian length, the payload. Bodies arrive in chunks that cut
// frames anywhere, so the scanner keeps just enough state to find boundaries across chunks. It
// never copies a payload the caller does not want: a stream of messages costs a few
// comparisons per frame, whatever their size.

/** The payload is compressed with the stream's grpc-encoding / connect-content-encoding. */
export const FLAG_COMPRESSED = 0x01;
/** Connect streaming: the end-of-stream message (JSON with the error, if any, and trailers). */
export const FLAG_END_STREAM = 0x02;
/** gRPC-Web: the trailers, as HTTP/1 header lines ("grpc-status: 0\r\n"). */
export const FLAG_TRAILER = 0x80;

const HEADER_BYTES = 5;

/**
 * Called when a wanted frame is complete. `payload` is undefined when the frame was larger than
 * the scanner's limit: the frame was recognised but not kept.
 */
export type FrameHandler = (flags: number, payload: Uint8Array | undefined) => void;

export class EnvelopeScanner {
  /** Frames completed so far, wanted or not. */
  framesSeen = 0;
  private readonly header = new Uint8Array(HEADER_BYTES);
  private headerFilled = 0;
  private inPayload = false;
  private flags = 0;
  private remaining = 0;
  private wanted = false;
  private capture: Uint8Array | undefined;
  private captured = 0;

  /**
   * `wants(flags)` picks the frames whose payload is kept (trailers, end-of-stream); every other
   * payload is skipped. Kept payloads are limited to `maxPayloadBytes`.
   */
  constructor(
    private readonly wants: (flags: number) => boolean,
    private readonly onFrame: FrameHandler,
    private readonly maxPayloadBytes: number,
  ) {}

  /** Whether the bytes so far end inside a frame (a body that stops here was cut short). */
  get midFrame(): boolean {
    return this.inPayload || this.headerFilled > 0;
  }

  push(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length) {
      if (!this.inPayload) {
        const take = Math.min(HEADER_BYTES - this.headerFilled, bytes.length - i);
        this.header.set(bytes.subarray(i, i + take), this.headerFilled);
        this.headerFilled += take;
        i += take;
        if (this.headerFilled < HEADER_BYTES) return;
        this.headerFilled = 0;
        this.startFrame();
        continue;
      }
      const take = Math.min(this.remaining, bytes.length - i);
      if (this.capture) this.capture.set(bytes.subarray(i, i + take), this.captured);
      this.captured += take;
      this.remaining -= take;
      i += take;
      if (this.remaining === 0) this.endFrame();
    }
  }

  private startFrame(): void {
    const h = this.header;
    this.flags = h[0]!;
    // >>> 0 keeps lengths of 2 GiB and more positive.
    const length = ((h[1]! << 24) | (h[2]! << 16) | (h[3]! << 8) | h[4]!) >>> 0;
    this.wanted = this.wants(this.flags);
    this.capture = this.wanted && length <= this.maxPayloadBytes ? new Uint8Array(length) : undefined;
    this.captured = 0;
    this.remaining = length;
    this.inPayload = true;
    if (length === 0) this.endFrame();
  }

  private endFrame(): void {
    this.inPayload = false;
    this.framesSeen++;
    if (this.wanted) this.onFrame(this.flags, this.capture);
    this.capture = undefined;
  }
}

/** One frame: flags, length, payload. */
export function encodeEnvelope(flags: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, HEADER_BYTES);
  return out;
}

// Base64 for gRPC-Web text bodies. A server may encode each frame separately, so padding can
// appear in the middle of a stream; the decoder ends the quantum there and carries on.
const PAD = -2;
const SKIP = -3;
const INVALID = -1;
const BASE64_TABLE = (() => {
  const t = new Int8Array(256).fill(INVALID);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  t["-".charCodeAt(0)] = 62; // the URL-safe alphabet costs nothing to accept
  t["_".charCodeAt(0)] = 63;
  t["=".charCodeAt(0)] = PAD;
  for (const c of "\r\n\t ") t[c.charCodeAt(0)] = SKIP;
  return t;
})();

/** Decodes base64 that arrives in chunks cut anywhere, keeping the partial quantum between calls. */
export class Base64Decoder {
  private readonly quad = new Uint8Array(4);
  private n = 0;

  /** The bytes the characters so far decode to; throws on a character that is not base64. */
  decode(chars: Uint8Array): Uint8Array {
    const out = new Uint8Array(Math.floor((this.n + chars.length) / 4) * 3 + 3);
    const q = this.quad;
    let o = 0;
    for (let i = 0; i < chars.length; i++) {
      const v = BASE64_TABLE[chars[i]!]!;
      if (v >= 0) {
        q[this.n++] = v;
        if (this.n === 4) {
          out[o++] = (q[0]! << 2) | (q[1]! >> 4);
          out[o++] = ((q[1]! & 15) << 4) | (q[2]! >> 2);
          out[o++] = ((q[2]! & 3) << 6) | q[3]!;
          this.n = 0;
        }
      } else if (v === PAD) {
        if (this.n === 1) throw new Error("malformed base64: padding after a single character");
        if (this.n >= 2) out[o++] = (q[0]! << 2) | (q[1]! >> 4);
        if (this.n === 3) out[o++] = ((q[1]! & 15) << 4) | (q[2]! >> 2);
        this.n = 0;
      } else if (v !== SKIP) {
        throw new Error(`not base64: byte 0x${chars[i]!.toString(16).padStart(2, "0")}`);
      }
    }
    return out.subarray(0, o);
  }
}

/** Standard base64 of bytes (for the text variant of frames the sidecar writes itself). */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary);
}
