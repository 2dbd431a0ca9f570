import { Code } from "@connectrpc/connect";
import { codeFromHttpStatus as connectCodeFromHttp, codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { codeFromHttpStatus as grpcCodeFromHttp } from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";
import { codeForHttpStatus, codeFromConnectName, connectCodeName, GrpcCode, grpcCodeName, httpStatusForCode } from "../../workers/sidecar/grpc/codes.ts";
import { detectRpc, serviceAndMethod } from "../../workers/sidecar/grpc/protocol.ts";

const post = (contentType: string | null, extra: Record<string, string> = {}) => {
  const headers = new Headers(extra);
  if (contentType !== null) headers.set("content-type", contentType);
  return detectRpc("POST", "/edgemesh.example.v1.GreeterService/Greet", "", headers);
};

describe("detectRpc", () => {
  it("recognises gRPC-Web, binary and text, with its codec", () => {
    expect(post("application/grpc-web")).toMatchObject({ protocol: "grpc-web", codec: "proto", service: "edgemesh.example.v1.GreeterService", method: "Greet" });
    expect(post("application/grpc-web+proto")).toMatchObject({ protocol: "grpc-web", codec: "proto" });
    expect(post("application/grpc-web+json; charset=utf-8")).toMatchObject({ protocol: "grpc-web", codec: "json", contentType: "application/grpc-web+json" });
    expect(post("application/grpc-web-text")).toMatchObject({ protocol: "grpc-web-text", codec: "proto" });
    expect(post("Application/GRPC-Web-Text+proto")).toMatchObject({ protocol: "grpc-web-text", codec: "proto" });
  });

  it("recognises native gRPC", () => {
    expect(post("application/grpc")).toMatchObject({ protocol: "grpc", codec: "proto" });
    expect(post("application/grpc+json")).toMatchObject({ protocol: "grpc", codec: "json" });
  });

  it("recognises Connect unary only with connect-protocol-version: 1, since a REST call is a JSON POST too", () => {
    expect(post("application/proto", { "connect-protocol-version": "1" })).toMatchObject({ protocol: "connect-unary", codec: "proto" });
    expect(post("application/json", { "connect-protocol-version": "1" })).toMatchObject({ protocol: "connect-unary", codec: "json" });
    expect(post("application/json")).toBeUndefined();
    expect(post("application/json", { "connect-protocol-version": "2" })).toBeUndefined();
  });

  it("recognises Connect unary GET by its query", () => {
    const get = (search: string) => detectRpc("GET", "/edgemesh.example.v1.GreeterService/Greet", search, new Headers());
    expect(get("?connect=v1&encoding=json&message=%7B%7D")).toMatchObject({ protocol: "connect-unary", codec: "json", method: "Greet" });
    expect(get("?encoding=proto&message=AA&connect=v1")).toMatchObject({ protocol: "connect-unary", codec: "proto" });
    expect(get("?connect=v10")).toBeUndefined();
    expect(get("?q=connect=v1")).toBeUndefined();
    expect(get("")).toBeUndefined();
  });

  it("recognises Connect streaming", () => {
    expect(post("application/connect+proto")).toMatchObject({ protocol: "connect-stream", codec: "proto" });
    expect(post("application/connect+json")).toMatchObject({ protocol: "connect-stream", codec: "json" });
    expect(post("application/connect")).toBeUndefined();
  });

  it("leaves everything else to plain HTTP", () => {
    expect(post(null)).toBeUndefined();
    expect(post("text/plain")).toBeUndefined();
    expect(post("application/grpcfoo")).toBeUndefined();
    expect(post("application/x-www-form-urlencoded")).toBeUndefined();
    expect(detectRpc("PUT", "/a/b", "", new Headers({ "content-type": "application/grpc-web" }))).toBeUndefined();
  });

  it("names service and method only for a /service/method path", () => {
    expect(serviceAndMethod("/pkg.Svc/Do")).toEqual({ service: "pkg.Svc", method: "Do" });
    for (const p of ["/", "/pkg.Svc", "/pkg.Svc/", "//Do", "/api/pkg.Svc/Do", "pkg.Svc/Do"]) expect(serviceAndMethod(p)).toEqual({ service: "", method: "" });
  });
});

describe("gRPC codes", () => {
  const all = Object.values(GrpcCode);

  it("name every code as Connect and gRPC do", () => {
    for (const code of all) {
      if (code === GrpcCode.OK) continue;
      expect(connectCodeName(code)).toBe(codeToString(code as unknown as Code));
      expect(codeFromConnectName(connectCodeName(code))).toBe(code);
    }
    expect(codeFromConnectName("cancelled")).toBe(GrpcCode.CANCELLED);
    expect(codeFromConnectName("UNAVAILABLE")).toBeUndefined();
    expect(codeFromConnectName(14)).toBeUndefined();
    expect(grpcCodeName(GrpcCode.CANCELLED)).toBe("CANCELLED");
    expect(grpcCodeName(GrpcCode.RESOURCE_EXHAUSTED)).toBe("RESOURCE_EXHAUSTED");
  });

  it("map codes to HTTP as Connect does, and HTTP to codes as gRPC clients do", () => {
    for (const code of all) if (code !== GrpcCode.OK) expect(httpStatusForCode(code)).toBe(codeToHttpStatus(code as unknown as Code));
    for (const status of [400, 401, 403, 404, 408, 409, 412, 429, 499, 500, 501, 502, 503, 504, 505]) {
      expect(codeForHttpStatus(status)).toBe(grpcCodeFromHttp(status) ?? GrpcCode.UNKNOWN);
      expect(codeForHttpStatus(status)).toBe(connectCodeFromHttp(status));
    }
  });
});
