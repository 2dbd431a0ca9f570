import { describe, expect, it } from "vitest";
import { encodeGrpcTimeout, parseConnectTimeout, parseGrpcTimeout, remainingTimeoutHeader, requestedTimeout, rpcDeadline } from "../../workers/sidecar/grpc/deadline.ts";

describe("RPC deadlines", () => {
  it("parse grpc-timeout in every unit", () => {
    expect(parseGrpcTimeout("10S")).toBe(10_000);
    expect(parseGrpcTimeout("200m")).toBe(200);
    expect(parseGrpcTimeout("5u")).toBeCloseTo(0.005);
    expect(parseGrpcTimeout("1n")).toBeCloseTo(0.000001);
    expect(parseGrpcTimeout("3H")).toBe(3 * 3_600_000);
    expect(parseGrpcTimeout("2M")).toBe(120_000);
    expect(parseGrpcTimeout(" 99999999m ")).toBe(99_999_999);
    for (const bad of ["", "10", "S", "1.5S", "-1S", "123456789m", "10s", "10 S", "1e3m"]) expect(parseGrpcTimeout(bad)).toBeUndefined();
  });

  it("parse connect-timeout-ms", () => {
    expect(parseConnectTimeout("250")).toBe(250);
    expect(parseConnectTimeout("9999999999")).toBe(9_999_999_999);
    for (const bad of ["", "12345678901", "1.5", "-1", "10ms"]) expect(parseConnectTimeout(bad)).toBeUndefined();
  });

  it("take the timeout from the header of the caller's protocol", () => {
    const h = new Headers({ "grpc-timeout": "2S", "connect-timeout-ms": "500" });
    expect(requestedTimeout("grpc-web", h)).toEqual({ kind: "timeout", timeoutMs: 2000 });
    expect(requestedTimeout("connect-unary", h)).toEqual({ kind: "timeout", timeoutMs: 500 });
    expect(requestedTimeout("connect-stream", new Headers())).toEqual({ kind: "none" });
    expect(requestedTimeout("grpc-web-text", new Headers({ "grpc-timeout": "soon" }))).toEqual({ kind: "malformed", value: "soon" });
  });

  it("cap the caller's deadline by the route's timeout, and propagate only one the caller set", () => {
    expect(rpcDeadline({ kind: "timeout", timeoutMs: 300 }, 15_000)).toEqual({ timeoutMs: 300, setBy: "caller", propagate: true });
    expect(rpcDeadline({ kind: "timeout", timeoutMs: 60_000 }, 2_000)).toEqual({ timeoutMs: 2_000, setBy: "route", propagate: true });
    expect(rpcDeadline({ kind: "none" }, 2_000)).toEqual({ timeoutMs: 2_000, setBy: "route", propagate: false });
    expect(rpcDeadline({ kind: "malformed", value: "x" }, 2_000)).toEqual({ timeoutMs: 2_000, setBy: "route", propagate: false });
  });

  it("encode what is left without ever lengthening it, within 8 digits", () => {
    expect(encodeGrpcTimeout(250)).toBe("250m");
    expect(encodeGrpcTimeout(250.9)).toBe("250m");
    expect(encodeGrpcTimeout(0.5)).toBe("500000n");
    expect(encodeGrpcTimeout(99_999_999)).toBe("99999999m");
    expect(encodeGrpcTimeout(100_000_000)).toBe("100000S");
    expect(encodeGrpcTimeout(1e12)).toBe("16666666M");
    expect(encodeGrpcTimeout(1e15)).toBe("99999999H");
    for (const ms of [0.001, 1, 7.7, 12_345.6, 1e9, 3e13]) {
      const encoded = encodeGrpcTimeout(ms);
      expect(encoded).toMatch(/^\d{1,8}[HMSmun]$/);
      expect(parseGrpcTimeout(encoded)!).toBeLessThanOrEqual(ms + 1e-9);
    }
  });

  it("name the header to send upstream, none when the time is up", () => {
    expect(remainingTimeoutHeader("grpc-web", 1234.5)).toEqual(["grpc-timeout", "1234m"]);
    expect(remainingTimeoutHeader("connect-stream", 1234.5)).toEqual(["connect-timeout-ms", "1234"]);
    expect(remainingTimeoutHeader("connect-unary", 0.4)).toEqual(["connect-timeout-ms", "1"]);
    expect(remainingTimeoutHeader("grpc-web", 0)).toBeUndefined();
    expect(remainingTimeoutHeader("grpc-web", -5)).toBeUndefined();
  });
});
