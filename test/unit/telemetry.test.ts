// The per-request telemetry logic: layout, caller identity, outcomes, sampling, byte counting.
import { describe, expect, it } from "vitest";
import { BLOB_FIELDS, COLUMN, DOUBLE_FIELDS, EXTERNAL_CALLER, OUTCOMES, ROW_WEIGHT, toDataPoint, type RequestRecord } from "../../analytics/request-layout.ts";
import { MAX_BLOBS, MAX_DOUBLES, MAX_INDEX_BYTES } from "../../analytics/types.ts";
import { bindingCallerOf } from "../../workers/sidecar/identity.ts";
import { identityRefusedResponse } from "../../auth/identity.ts";
import { accessDeniedResponse } from "../../workers/sidecar/access.ts";
import { rateLimitedResponse } from "../../workers/sidecar/ratelimit.ts";
import { meshError } from "../../workers/sidecar/responses.ts";
import { faultResponse } from "../../workers/sidecar/fault.ts";
import { bodyBytes, countedBody, outcomeOf, recordOf, sampled, startTrace } from "../../workers/sidecar/telemetry.ts";
import { seeded } from "./resilience-fixtures.ts";

const record: RequestRecord = {
  mesh: "bookinfo", source: "productpage", destination: "reviews", route: "default", subset: "v1", endpoint: "reviews-v1",
  outcome: "retried-ok", colo: "LCL", method: "GET", reason: "", sampleWeight: 4, status: 200, latencyMs: 12, attempts: 2,
  requestBytes: 0, responseBytes: 345, hedged: true,
  rpcProtocol: "grpc-web", rpcService: "edgemesh.example.v1.GreeterService", rpcMethod: "Greet", grpcStatus: 14,
};

describe("request layout", () => {
  it("puts every field where COLUMN says it is", () => {
    const point = toDataPoint(record);
    for (const field of BLOB_FIELDS) expect(point.blobs[Number(COLUMN[field].slice(4)) - 1]).toBe(String(record[field]));
    for (const field of DOUBLE_FIELDS) {
      const expected = field === "hedged" ? 1 : (record[field] as number);
      expect(point.doubles[Number(COLUMN[field].slice(6)) - 1]).toBe(expected);
    }
    expect(point.indexes).toEqual(["reviews"]);
  });

  it("fits Analytics Engine's limits, also with a destination longer than the index allows", () => {
    const point = toDataPoint({ ...record, destination: "é".repeat(60) });
    expect(point.blobs.length).toBeLessThanOrEqual(MAX_BLOBS);
    expect(point.doubles.length).toBeLessThanOrEqual(MAX_DOUBLES);
    const indexBytes = new TextEncoder().encode(point.indexes[0]);
    expect(indexBytes.length).toBeLessThanOrEqual(MAX_INDEX_BYTES);
    expect(point.indexes[0]).toBe("é".repeat(48));
    expect(toDataPoint({ ...record, destination: "a".repeat(200) }).indexes[0]).toHaveLength(MAX_INDEX_BYTES);
  });

  it("weights rows by Analytics Engine's sampling times the sidecar's", () => {
    expect(ROW_WEIGHT).toBe("_sample_interval * double1");
    expect(COLUMN.destination).toBe("blob3");
    expect(COLUMN.latencyMs).toBe("double3");
  });
});

describe("caller identity before the snapshot is known", () => {
  it("comes from the binding's props when they name a caller, and is external otherwise", () => {
    expect(bindingCallerOf({ caller: "productpage" })).toBe("productpage");
    expect(bindingCallerOf({})).toBe(EXTERNAL_CALLER);
    expect(bindingCallerOf(undefined)).toBe(EXTERNAL_CALLER);
    expect(bindingCallerOf({ caller: "" })).toBe(EXTERNAL_CALLER);
    expect(bindingCallerOf({ caller: 7 })).toBe(EXTERNAL_CALLER);
    // Not a caller name: misconfigured props are not believed (nor cut to size).
    expect(bindingCallerOf({ caller: "x".repeat(100) })).toBe(EXTERNAL_CALLER);
    expect(bindingCallerOf({ caller: "Product Page" })).toBe(EXTERNAL_CALLER);
  });

  it("never comes from a header", () => {
    const request = new Request("http://reviews/x", { headers: { "x-edgemesh-caller": "productpage", "x-edgemesh-source": "productpage" } });
    expect(startTrace(request, bindingCallerOf({}), 0).source).toBe(EXTERNAL_CALLER);
  });
});

describe("outcome", () => {
  it("of upstream answers: ok, retried-ok, failed", () => {
    expect(outcomeOf(new Response("x"), 1)).toEqual({ outcome: "ok", reason: "" });
    expect(outcomeOf(new Response("x", { status: 404 }), 1).outcome).toBe("ok");
    expect(outcomeOf(new Response("x"), 3).outcome).toBe("retried-ok");
    expect(outcomeOf(new Response("x", { status: 503 }), 3).outcome).toBe("failed");
  });

  it("of RPC answers: by the HTTP status equivalent to the gRPC code, whatever the HTTP status", () => {
    // gRPC-Web: HTTP 200 and UNAVAILABLE (14) or INTERNAL (13) in the trailer is a failure.
    expect(outcomeOf(new Response("x"), 1, 14).outcome).toBe("failed");
    expect(outcomeOf(new Response("x"), 1, 13).outcome).toBe("failed");
    // NOT_FOUND (5), CANCELLED (1) and OK (0) are not the endpoint failing.
    expect(outcomeOf(new Response("x"), 1, 5).outcome).toBe("ok");
    expect(outcomeOf(new Response("x"), 1, 1).outcome).toBe("ok");
    expect(outcomeOf(new Response("x"), 2, 0).outcome).toBe("retried-ok");
    // No code known (-1): the HTTP status decides, as for plain HTTP.
    expect(outcomeOf(new Response("x", { status: 503 }), 1, -1).outcome).toBe("failed");
  });

  it("of the sidecar's own answers, with the reason", () => {
    expect(outcomeOf(meshError(504, "x-edgemesh-timeout", "route-timeout"), 1)).toEqual({ outcome: "timeout", reason: "route-timeout" });
    expect(outcomeOf(meshError(503, "x-edgemesh-overloaded", "max-pending"), 0)).toEqual({ outcome: "shed", reason: "max-pending" });
    expect(outcomeOf(meshError(404, "x-edgemesh-no-route", "no-route-matched"), 0).outcome).toBe("no-route");
    expect(outcomeOf(meshError(503, "x-edgemesh-error", "no-endpoint"), 0).outcome).toBe("no-endpoint");
    expect(outcomeOf(meshError(503, "x-edgemesh-error", "no-snapshot"), 0).outcome).toBe("no-snapshot");
    expect(outcomeOf(meshError(502, "x-edgemesh-error", "connect-failure"), 3)).toEqual({ outcome: "failed", reason: "connect-failure" });
    expect(outcomeOf(meshError(500, "x-edgemesh-error", "sidecar-internal-error"), 0).outcome).toBe("error");
    expect(outcomeOf(faultResponse(200), 1).outcome).toBe("fault-injected");
  });

  it("of zero-trust refusals: unauthenticated, denied, rate-limited, with what refused", () => {
    expect(outcomeOf(identityRefusedResponse({ kind: "refused", reason: "expired", detail: "" }), 0)).toEqual({ outcome: "unauthenticated", reason: "expired" });
    expect(outcomeOf(accessDeniedResponse("reviews/no-admin", "external"), 0)).toEqual({ outcome: "denied", reason: "reviews/no-admin" });
    expect(outcomeOf(rateLimitedResponse({ limitId: "reviews/per-caller", retryAfterMs: 1000, source: "local" }), 0)).toEqual({ outcome: "rate-limited", reason: "reviews/per-caller" });
  });

  it("is always one of the documented outcomes", () => {
    for (const r of [new Response(""), meshError(502, "x-edgemesh-error", "whatever")]) expect(OUTCOMES).toContain(outcomeOf(r, 1).outcome);
  });
});

describe("sampling", () => {
  it("records every request at interval 1 and about one in N otherwise", () => {
    const random = seeded(7);
    expect(Array.from({ length: 1000 }, () => sampled(1, random)).every(Boolean)).toBe(true);
    const kept = Array.from({ length: 20_000 }, () => sampled(10, random)).filter(Boolean).length;
    expect(kept).toBeGreaterThan(1_700);
    expect(kept).toBeLessThan(2_300);
  });

  it("gives a sampled record the interval as its weight", () => {
    const trace = startTrace(new Request("http://x/"), "productpage", 0);
    trace.sampleInterval = 10;
    expect(recordOf(trace, { mesh: "m", destination: "d" }, 200, "ok", "", 1, 0).sampleWeight).toBe(10);
  });
});

describe("bytes", () => {
  it("come from content-length, 0 without a body, -1 when unknown", () => {
    expect(bodyBytes(new Headers({ "content-length": "42" }), true)).toBe(42);
    expect(bodyBytes(new Headers(), false)).toBe(0);
    expect(bodyBytes(new Headers(), true)).toBe(-1);
    expect(bodyBytes(new Headers({ "content-length": "nope" }), true)).toBe(-1);
  });

  it("are counted as a body streams, and reported once when it ends or is cancelled", async () => {
    const reports: number[] = [];
    const source = new Response(new Uint8Array(1000)).body!;
    const counted = countedBody(source, (n) => reports.push(n));
    expect(reports).toEqual([]);
    expect((await new Response(counted).arrayBuffer()).byteLength).toBe(1000);
    expect(reports).toEqual([1000]);

    const cancelled: number[] = [];
    const stream = countedBody(new Response(new Uint8Array(10)).body!, (n) => cancelled.push(n));
    await stream.cancel("client went away");
    expect(cancelled).toEqual([-1]);
  });
});
