// Property-based fuzzing of the mesh token parser: whatever arrives, it answers with a typed
// failure and never throws; and no change to a valid token, however small, is accepted.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateMeshKey, issueToken, prepareSigningKeys } from "../../auth/mesh-token.ts";
import { base64UrlEncode, verifyMeshToken, type TokenFailureReason } from "../../auth/verify.ts";

const T0 = Date.UTC(2026, 6, 1, 12, 0, 0);
const REASONS: TokenFailureReason[] = [
  "missing", "malformed", "unsupported-algorithm", "unknown-key", "retired-key", "bad-signature", "wrong-mesh", "wrong-callee",
  "not-yet-valid", "expired", "lifetime-too-long", "forwarded-token", "not-forwarded",
];
const key = await generateMeshKey({ kid: "k1" });
const keys = await prepareSigningKeys({ keys: [key] });
const options = { audience: "reviews", mesh: "bookinfo", nowMs: T0 + 1000 };
const tokens = await Promise.all(["productpage", "a", "nightly-job-with-a-long-name"].map((caller) =>
  issueToken(keys, { mesh: "bookinfo", caller, callee: "reviews", ttlMs: 60_000, nowMs: T0 })));
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

async function expectTypedFailure(input: unknown): Promise<void> {
  const verdict = await verifyMeshToken(input, keys, options);
  expect(verdict.ok).toBe(false);
  if (!verdict.ok) {
    expect(REASONS).toContain(verdict.reason);
    expect(typeof verdict.detail).toBe("string");
  }
}

describe("token parser fuzzing", () => {
  it("the tokens under test are valid to begin with", async () => {
    for (const t of tokens) expect((await verifyMeshToken(t, keys, options)).ok).toBe(true);
  });

  it("answers any string with a typed failure, never an exception", async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ maxLength: 3000 }), fc.string({ unit: "binary", maxLength: 500 }), fc.constant("")), expectTypedFailure), { numRuns: 400 });
  });

  it("answers three-part tokens of arbitrary base64url and JSON with a typed failure", async () => {
    const segment = fc.oneof(
      fc.string({ unit: fc.constantFrom(...B64URL), maxLength: 400 }),
      fc.json({ maxDepth: 3 }).map((j) => base64UrlEncode(new TextEncoder().encode(j))),
      fc.record({ alg: fc.constantFrom("EdDSA", "none", "HS256", 1), typ: fc.constantFrom("edgemesh+jwt", "JWT"), kid: fc.constantFrom("k1", "k2", "", 5) })
        .map((h) => base64UrlEncode(new TextEncoder().encode(JSON.stringify(h)))),
    );
    await fc.assert(fc.asyncProperty(segment, segment, segment, async (h, p, s) => expectTypedFailure(`${h}.${p}.${s}`)), { numRuns: 400 });
  });

  it("answers values of any type with a typed failure", async () => {
    await fc.assert(fc.asyncProperty(fc.anything(), expectTypedFailure), { numRuns: 200 });
  });

  it("never accepts a token with any character replaced, inserted or removed", async () => {
    const mutation = fc.record({
      token: fc.constantFrom(...tokens),
      position: fc.nat(),
      kind: fc.constantFrom("replace", "insert", "delete"),
      char: fc.oneof(fc.constantFrom(...B64URL, ".", "=", " ", "+", "/"), fc.string({ minLength: 1, maxLength: 1 })),
    });
    await fc.assert(fc.asyncProperty(mutation, async ({ token, position, kind, char }) => {
      const i = position % token.length;
      const mutated = kind === "replace" ? token.slice(0, i) + char + token.slice(i + 1)
        : kind === "insert" ? token.slice(0, i) + char + token.slice(i)
        : token.slice(0, i) + token.slice(i + 1);
      fc.pre(mutated !== token);
      await expectTypedFailure(mutated);
    }), { numRuns: 1500 });
  });

  it("never accepts a token with parts swapped between valid tokens, or truncated", async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...tokens), fc.constantFrom(...tokens), fc.nat({ max: 2 }), fc.nat(), async (a, b, part, cut) => {
      const pa = a.split(".");
      const pb = b.split(".");
      const mixed = pa.map((p, i) => (i === part ? pb[i]! : p)).join(".");
      if (mixed !== a) await expectTypedFailure(mixed);
      const truncated = a.slice(0, cut % a.length);
      await expectTypedFailure(truncated);
    }), { numRuns: 300 });
  });
});
