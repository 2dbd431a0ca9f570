import { describe, expect, it } from "vitest";
import { callerName, identifyCaller, identifyWithoutVerifying, identityRefusedResponse, type IdentifyOptions } from "../../auth/identity.ts";
import { generateMeshKey, issueToken, prepareSigningKeys, type SigningKeys } from "../../auth/mesh-token.ts";

const T0 = Date.UTC(2026, 6, 1, 12, 0, 0);
const mesh = "bookinfo";

async function setup(unverifiedIdentity: IdentifyOptions["unverifiedIdentity"]) {
  const keys: SigningKeys = await prepareSigningKeys({ keys: [await generateMeshKey({ kid: "k1" })] });
  const options: IdentifyOptions = { mesh, service: "reviews", unverifiedIdentity, keys, nowMs: T0 };
  const token = (caller: string, callee = "reviews", extra: { forwarded?: boolean; nowMs?: number } = {}) =>
    issueToken(keys, { mesh, caller, callee, ttlMs: 60_000, nowMs: extra.nowMs ?? T0, forwarded: extra.forwarded });
  return { options, token };
}

describe("identifying the caller", () => {
  it("trusts a service binding's props.caller first, whatever headers say", async () => {
    const { options } = await setup("refuse");
    const id = await identifyCaller({ bindingCaller: "productpage", token: "garbage", claimedCaller: "ratings" }, options);
    expect(id).toEqual({ kind: "verified", caller: "productpage", via: "binding" });
    expect(callerName(id)).toBe("productpage");
  });

  it("ignores props that are not a caller name", async () => {
    const { options } = await setup("refuse");
    for (const bindingCaller of [undefined, 42, "", "Not A Name", "external"]) {
      expect(await identifyCaller({ bindingCaller, token: null, claimedCaller: null }, options)).toEqual({ kind: "external" });
    }
  });

  it("believes a valid token for this service and names its caller", async () => {
    const { options, token } = await setup("refuse");
    const id = await identifyCaller({ bindingCaller: undefined, token: await token("nightly-job"), claimedCaller: "nightly-job" }, options);
    expect(id).toEqual({ kind: "verified", caller: "nightly-job", via: "token" });
  });

  it("refuses (401 policy) a token for another service, an expired one and an identity header without a token", async () => {
    const { options, token } = await setup("refuse");
    const replayed = await identifyCaller({ bindingCaller: undefined, token: await token("productpage", "ratings"), claimedCaller: null }, options);
    expect(replayed).toMatchObject({ kind: "refused", reason: "wrong-callee" });
    const expired = await identifyCaller({ bindingCaller: undefined, token: await token("productpage", "reviews", { nowMs: T0 - 10 * 60_000 }), claimedCaller: null }, options);
    expect(expired).toMatchObject({ kind: "refused", reason: "expired" });
    const spoofed = await identifyCaller({ bindingCaller: undefined, token: null, claimedCaller: "productpage" }, options);
    expect(spoofed).toMatchObject({ kind: "refused", reason: "claim-without-token" });
    const mismatch = await identifyCaller({ bindingCaller: undefined, token: await token("job"), claimedCaller: "productpage" }, options);
    expect(mismatch).toMatchObject({ kind: "refused", reason: "claim-mismatch" });
  });

  it("refuses a token an origin received from a sidecar (no replay into the mesh)", async () => {
    const { options, token } = await setup("refuse");
    const id = await identifyCaller({ bindingCaller: undefined, token: await token("productpage", "reviews", { forwarded: true }), claimedCaller: null }, options);
    expect(id).toMatchObject({ kind: "refused", reason: "forwarded-token" });
  });

  it("with policy external, an unverifiable claim makes the caller external, with the reason kept", async () => {
    const { options, token } = await setup("external");
    const id = await identifyCaller({ bindingCaller: undefined, token: await token("productpage", "ratings"), claimedCaller: null }, options);
    expect(id).toMatchObject({ kind: "external", unverified: { reason: "wrong-callee" } });
    expect(callerName(id)).toBe("external");
    expect(await identifyCaller({ bindingCaller: undefined, token: null, claimedCaller: "productpage" }, options)).toMatchObject({ kind: "external", unverified: { reason: "claim-without-token" } });
  });

  it("a token presented to a sidecar without keys is never believed", async () => {
    const { options, token } = await setup("refuse");
    const id = await identifyCaller({ bindingCaller: undefined, token: await token("job"), claimedCaller: null }, { ...options, keys: undefined });
    expect(id).toMatchObject({ kind: "refused", reason: "tokens-not-configured" });
  });
});

describe("the hot path without a token", () => {
  it("answers without a promise unless a token must be verified", async () => {
    const { options, token } = await setup("refuse");
    expect(identifyWithoutVerifying({ bindingCaller: "productpage", token: null, claimedCaller: null }, options)).toEqual({ kind: "verified", caller: "productpage", via: "binding" });
    expect(identifyWithoutVerifying({ bindingCaller: undefined, token: null, claimedCaller: null }, options)).toEqual({ kind: "external" });
    expect(identifyWithoutVerifying({ bindingCaller: undefined, token: await token("job"), claimedCaller: null }, options)).toBeUndefined();
  });

  it("a refusal is a 401 naming the reason", async () => {
    const { options } = await setup("refuse");
    const id = await identifyCaller({ bindingCaller: undefined, token: "x.y.z", claimedCaller: null }, options);
    if (id.kind !== "refused") throw new Error("expected a refusal");
    const res = identityRefusedResponse(id);
    expect(res.status).toBe(401);
    expect(res.headers.get("x-edgemesh-unauthenticated")).toBe("malformed");
    expect(await res.json()).toMatchObject({ error: "unauthenticated", reason: "malformed" });
  });
});
