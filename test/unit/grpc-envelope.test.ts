import { encodeEnvelopes } from "@connectrpc/connect/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Base64Decoder, encodeBase64, encodeEnvelope, EnvelopeScanner, FLAG_TRAILER } from "../../workers/sidecar/grpc/envelope.ts";

const bytes = (...xs: number[]) => new Uint8Array(xs);

function scanAll(chunks: Uint8Array[], wants = (_f: number) => true, max = 1024) {
  const frames: { flags: number; payload: number[] | undefined }[] = [];
  const scanner = new EnvelopeScanner(wants, (flags, payload) => frames.push({ flags, payload: payload && [...payload] }), max);
  for (const c of chunks) scanner.push(c);
  return { frames, scanner };
}

/** Cuts `whole` at the given positions. */
function cut(whole: Uint8Array, at: number[]): Uint8Array[] {
  const points = [...new Set(at.map((p) => p % (whole.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(whole.subarray(from, p));
    from = p;
  }
  out.push(whole.subarray(from));
  return out;
}

describe("EnvelopeScanner", () => {
  it("finds the frames that Connect's own encoder writes, however the bytes are cut", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ flags: fc.constantFrom(0, 1, 2, 0x80), data: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (envelopes, at) => {
          const whole = encodeEnvelopes(...envelopes);
          const { frames, scanner } = scanAll(cut(whole, at));
          expect(frames).toEqual(envelopes.map((e) => ({ flags: e.flags, payload: [...e.data] })));
          expect(scanner.framesSeen).toBe(envelopes.length);
          expect(scanner.midFrame).toBe(false);
        },
      ),
    );
  });

  it("skips the payloads nobody wants, without keeping them", () => {
    const whole = encodeEnvelopes({ flags: 0, data: new Uint8Array(5000) }, { flags: FLAG_TRAILER, data: bytes(1, 2) });
    const { frames, scanner } = scanAll(cut(whole, [3, 700, 4999, 5006]), (f) => (f & FLAG_TRAILER) !== 0);
    expect(frames).toEqual([{ flags: FLAG_TRAILER, payload: [1, 2] }]);
    expect(scanner.framesSeen).toBe(2);
  });

  it("reports a wanted frame over the limit without its payload", () => {
    const { frames } = scanAll([encodeEnvelope(FLAG_TRAILER, new Uint8Array(10))], () => true, 9);
    expect(frames).toEqual([{ flags: FLAG_TRAILER, payload: undefined }]);
  });

  it("knows when the bytes stop inside a frame", () => {
    expect(scanAll([bytes(0, 0, 0)]).scanner.midFrame).toBe(true);
    expect(scanAll([bytes(0, 0, 0, 0, 2, 9)]).scanner.midFrame).toBe(true);
    expect(scanAll([bytes(0, 0, 0, 0, 0)]).scanner.midFrame).toBe(false);
  });

  it("reads lengths of 2 GiB and more as positive", () => {
    const { scanner } = scanAll([bytes(0, 0x80, 0, 0, 0, 1, 2, 3)]);
    expect(scanner.midFrame).toBe(true);
    expect(scanner.framesSeen).toBe(0);
  });
});

describe("Base64Decoder", () => {
  const ascii = (s: string) => new TextEncoder().encode(s);

  it("decodes base64 cut anywhere, including frames encoded one by one with padding between them", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 20 }), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (parts, at) => {
        const text = ascii(parts.map((p) => encodeBase64(p)).join(""));
        const decoder = new Base64Decoder();
        const out: number[] = [];
        for (const chunk of cut(text, at)) out.push(...decoder.decode(chunk));
        expect(out).toEqual(parts.flatMap((p) => [...p]));
      }),
    );
  });

  it("refuses what is not base64", () => {
    expect(() => new Base64Decoder().decode(ascii("AA*A"))).toThrow(/not base64/);
    expect(() => new Base64Decoder().decode(ascii("A==="))).toThrow(/malformed/);
  });
});
