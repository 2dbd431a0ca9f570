import { Code } from "@connectrpc/connect";
import { endStreamFromJson, errorFromJson } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerParse, validateResponse } from "@connectrpc/connect/protocol-grpc-web";
import { describe, expect, it } from "vitest";
import { compiledService } from "./resilience-fixtures.ts";
import { GrpcCode } from "../../workers/sidecar/grpc/codes.ts";
import { connectEndStreamFrame, grpcNativeUnsupported, grpcWebTrailerFrame, meshErrorCode, rpcErrorResponse, toCallerProtocol, encodeGrpcMessage } from "../../workers/sidecar/grpc/errors.ts";
import { failureStatus, isRetriableRpcCode, rpcRetriesAllowed } from "../../workers/sidecar/grpc/outcome.ts";
import { isFailure, isGatewayError, isRetriable, mayRetryMethod, type TryOutcome } from "../../workers/sidecar/retry.ts";
import { detectRpc, type RpcCall } from "../../workers/sidecar/grpc/protocol.ts";
import { decodeGrpcMessage } from "../../workers/sidecar/grpc/status.ts";
import { meshError } from "../../workers/sidecar/responses.ts";
import { faultResponse } from "../../workers/sidecar/fault.ts";

const callOf = (contentType: string, extra: Record<string, string> = {}): RpcCall =>
  detectRpc("POST", "/pkg.Svc/Do", "", new Headers({ "content-type": contentType, ...extra }))!;
const GRPC_WEB = callOf("application/grpc-web+proto");
const GRPC_WEB_TEXT = callOf("application/grpc-web-text+proto");
const CONNECT_UNARY = callOf("application/proto", { "connect-protocol-version": "1" });
const CONNECT_STREAM = callOf("application/connect+json");
const NATIVE = callOf("application/grpc");

/** What Connect's own client code makes of an answer: its error code and message. */
async function clientReading(call: RpcCall, response: Response): Promise<{ code: Code; message: string }> {
  switch (call.protocol) {
    case "connect-unary": {
      const err = errorFromJson(await response.json(), undefined, new Error("fallback") as never);
      return { code: err.code, message: err.rawMessage };
    }
    case "connect-stream": {
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(bytes[0]).toBe(2);
      const end = endStreamFromJson(bytes.subarray(5));
      return { code: end.error!.code, message: end.error!.rawMessage };
    }
    default: {
      const { headerError } = validateResponse(response.status, response.headers);
      expect(await response.arrayBuffer()).toHaveProperty("byteLength", 0);
      return { code: headerError!.code, message: headerError!.rawMessage };
    }
  }
}

describe("errors in the caller's protocol", () => {
  it.each([GRPC_WEB, GRPC_WEB_TEXT, CONNECT_UNARY, CONNECT_STREAM, NATIVE])("are read by Connect's client code ($protocol)", async (call) => {
    const response = rpcErrorResponse(call, GrpcCode.UNAVAILABLE, "no healthy upstream: 0/3 ✗ 100%", { "x-edgemesh-generated": "1" });
    expect(response.headers.get("x-edgemesh-generated")).toBe("1");
    expect(await clientReading(call, response)).toEqual({ code: Code.Unavailable, message: "no healthy upstream: 0/3 ✗ 100%" });
  });

  it("give gRPC-Web a trailers-only 200 with the caller's content-type, and Connect unary the code's HTTP status", () => {
    const web = rpcErrorResponse(GRPC_WEB_TEXT, GrpcCode.DEADLINE_EXCEEDED, "late");
    expect(web.status).toBe(200);
    expect(web.headers.get("content-type")).toBe("application/grpc-web-text+proto");
    expect(web.headers.get("grpc-status")).toBe("4");
    expect(rpcErrorResponse(CONNECT_UNARY, GrpcCode.DEADLINE_EXCEEDED, "late").status).toBe(504);
    expect(rpcErrorResponse(CONNECT_UNARY, GrpcCode.RESOURCE_EXHAUSTED, "").status).toBe(429);
    expect(rpcErrorResponse(CONNECT_STREAM, GrpcCode.RESOURCE_EXHAUSTED, "").status).toBe(200);
  });

  it("write trailer frames and end-of-stream messages for ending a stream", () => {
    const frame = grpcWebTrailerFrame(GrpcCode.DEADLINE_EXCEEDED, "100% late", false);
    expect(frame[0]).toBe(0x80);
    const err = findTrailerError(trailerParse(frame.subarray(5)));
    expect(err).toMatchObject({ code: Code.DeadlineExceeded, rawMessage: "100% late" });
    const text = new TextDecoder().decode(grpcWebTrailerFrame(GrpcCode.OK, "", true));
    expect(Uint8Array.from(atob(text), (c) => c.charCodeAt(0))[0]).toBe(0x80);
    expect(endStreamFromJson(connectEndStreamFrame(GrpcCode.ABORTED, "x").subarray(5)).error?.code).toBe(Code.Aborted);
  });

  it("percent-encode grpc-message as the spec says, and read it back", () => {
    expect(encodeGrpcMessage("plain text: ok")).toBe("plain text: ok");
    expect(encodeGrpcMessage("50% ✗\n")).toBe("50%25 %E2%9C%97%0A");
    for (const m of ["", "a%b", "ünïcödé", "line\r\nbreak", "%zz"]) expect(decodeGrpcMessage(encodeGrpcMessage(m))).toBe(m);
  });

  it("answer native gRPC with UNIMPLEMENTED, trailers-only, saying why and what to do", async () => {
    const response = grpcNativeUnsupported(NATIVE);
    expect(response.headers.get("x-edgemesh-error")).toBe("grpc-native-unsupported");
    const { code, message } = await clientReading(NATIVE, response);
    expect(code).toBe(Code.Unimplemented);
    expect(message).toMatch(/trailers.*gRPC-Web or Connect.*enable gRPC on the zone/);
  });
});

describe("the sidecar's own errors in the caller's protocol", () => {
  it.each([
    [meshError(404, "x-edgemesh-no-route", "no-route-matched"), GrpcCode.UNIMPLEMENTED],
    [meshError(504, "x-edgemesh-timeout", "route-timeout", { route: "r", timeoutMs: 300 }), GrpcCode.DEADLINE_EXCEEDED],
    [meshError(504, "x-edgemesh-timeout", "per-try-timeout"), GrpcCode.DEADLINE_EXCEEDED],
    [meshError(503, "x-edgemesh-overloaded", "max-pending"), GrpcCode.UNAVAILABLE],
    [meshError(503, "x-edgemesh-overloaded", "pending-timeout"), GrpcCode.UNAVAILABLE],
    [meshError(403, "x-edgemesh-denied-by", "rule-3"), GrpcCode.PERMISSION_DENIED],
    [meshError(401, "x-edgemesh-denied-by", "no-identity"), GrpcCode.UNAUTHENTICATED],
    [meshError(429, "x-edgemesh-rate-limited", "caller-quota"), GrpcCode.RESOURCE_EXHAUSTED],
    [meshError(503, "x-edgemesh-error", "no-endpoint"), GrpcCode.UNAVAILABLE],
    [meshError(502, "x-edgemesh-error", "connect-failure"), GrpcCode.UNAVAILABLE],
    [meshError(502, "x-edgemesh-error", "upstream-reset"), GrpcCode.UNAVAILABLE],
    [meshError(503, "x-edgemesh-error", "no-snapshot"), GrpcCode.UNAVAILABLE],
    [meshError(500, "x-edgemesh-error", "sidecar-internal-error"), GrpcCode.INTERNAL],
    [faultResponse(503), GrpcCode.UNAVAILABLE],
    [faultResponse(500), GrpcCode.UNKNOWN],
  ])("map %# to its code", async (response, code) => {
    expect(meshErrorCode(response.status, response.headers).code).toBe(code);
    for (const call of [GRPC_WEB, CONNECT_UNARY, CONNECT_STREAM]) {
      const converted = await toCallerProtocol(call, response.clone());
      expect((await clientReading(call, converted)).code).toBe(code as number);
    }
  });

  it("keep the reason headers and name the reason and its details in the message", async () => {
    const converted = await toCallerProtocol(GRPC_WEB, meshError(504, "x-edgemesh-timeout", "route-timeout", { route: "greet", timeoutMs: 300 }));
    expect(converted.headers.get("x-edgemesh-generated")).toBe("1");
    expect(converted.headers.get("x-edgemesh-timeout")).toBe("route-timeout");
    expect(decodeGrpcMessage(converted.headers.get("grpc-message")!)).toBe("edgemesh: route-timeout (route: greet, timeoutMs: 300)");
  });

  it("leave upstream answers, and answers already in an RPC protocol, as they are", async () => {
    const upstream = new Response("upstream 503", { status: 503 });
    expect(await toCallerProtocol(GRPC_WEB, upstream)).toBe(upstream);
    const native = grpcNativeUnsupported(NATIVE);
    expect(await toCallerProtocol(NATIVE, native)).toBe(native);
  });
});

describe("RPC outcomes for retries and outlier detection", () => {
  const retryOf = (retryOn: string[], extra: Record<string, unknown> = {}) =>
    compiledService({ subsets: { all: {} }, routes: [{ name: "r", to: [{ subset: "all" }], retries: { retryOn, ...extra } }] }).routes[0]!.retry;
  const rpcAnswer = (code: GrpcCode, httpStatus = 200): TryOutcome => ({ kind: "response", status: httpStatus, rpcCode: code });

  it("retry only the codes retryOn names, and let naming one opt RPCs (POSTs) in", () => {
    const retry = retryOf(["gateway-error", "unavailable", "resource-exhausted"]);
    expect(retry.grpcRetryCodes).toEqual([GrpcCode.RESOURCE_EXHAUSTED, GrpcCode.UNAVAILABLE]);
    expect(isRetriableRpcCode(retry, GrpcCode.UNAVAILABLE)).toBe(true);
    expect(isRetriableRpcCode(retry, GrpcCode.INTERNAL)).toBe(false);
    expect(isRetriableRpcCode(retry, GrpcCode.OK)).toBe(false);
    expect(rpcRetriesAllowed(retry)).toBe(true);
    expect(rpcRetriesAllowed(retryOf(["gateway-error"]))).toBe(false);
    expect(mayRetryMethod(retry, "POST", true)).toBe(true);
    expect(mayRetryMethod(retry, "POST", false)).toBe(false);
    expect(mayRetryMethod(retryOf(["gateway-error"]), "POST", true)).toBe(false);
  });

  it("keep HTTP and gRPC retry conditions apart, as Envoy does", () => {
    // UNAVAILABLE in an HTTP 200: retried on "unavailable", not on "gateway-error" (an HTTP condition).
    expect(isRetriable(retryOf(["unavailable"]), rpcAnswer(GrpcCode.UNAVAILABLE))).toBe(true);
    expect(isRetriable(retryOf(["gateway-error"]), rpcAnswer(GrpcCode.UNAVAILABLE))).toBe(false);
    expect(isRetriable(retryOf(["unavailable"]), rpcAnswer(GrpcCode.INTERNAL))).toBe(false);
    // A Connect unary UNAVAILABLE is also an HTTP 503: the HTTP condition sees that.
    expect(isRetriable(retryOf(["gateway-error"]), rpcAnswer(GrpcCode.UNAVAILABLE, 503))).toBe(true);
  });

  it("show outlier detection, the balancer and passive health the HTTP status a gRPC code stands for", () => {
    expect(failureStatus(200, GrpcCode.UNAVAILABLE)).toBe(503);
    expect(failureStatus(200, GrpcCode.DEADLINE_EXCEEDED)).toBe(504);
    expect(failureStatus(200, GrpcCode.INTERNAL)).toBe(500);
    expect(failureStatus(200, GrpcCode.NOT_FOUND)).toBe(404);
    expect(failureStatus(200, GrpcCode.OK)).toBe(200);
    expect(failureStatus(502, undefined)).toBe(502);
    // UNAVAILABLE is a gateway error like a 503, DEADLINE_EXCEEDED like a 504; INTERNAL a failure; CANCELLED none.
    expect([isFailure(rpcAnswer(GrpcCode.UNAVAILABLE)), isGatewayError(rpcAnswer(GrpcCode.UNAVAILABLE))]).toEqual([true, true]);
    expect([isFailure(rpcAnswer(GrpcCode.DEADLINE_EXCEEDED)), isGatewayError(rpcAnswer(GrpcCode.DEADLINE_EXCEEDED))]).toEqual([true, true]);
    expect([isFailure(rpcAnswer(GrpcCode.INTERNAL)), isGatewayError(rpcAnswer(GrpcCode.INTERNAL))]).toEqual([true, false]);
    expect(isFailure(rpcAnswer(GrpcCode.CANCELLED))).toBe(false);
    expect(isFailure(rpcAnswer(GrpcCode.OK))).toBe(false);
  });
});
