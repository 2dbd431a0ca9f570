import { describe, expect, it } from "vitest";
import { backoffMs, classifyFetchError, isRetriable, mayRetryMethod, nextRetryWait, retryAfterMs } from "../../workers/sidecar/retry.ts";
import { compiledService } from "./resilience-fixtures.ts";

const defaults = compiledService().routes[0]!.retry;

describe("retry conditions", () => {
  it("retries gateway errors, connect failures, resets and timeouts by default, not 500 or 4xx", () => {
    for (const s of [502, 503, 504]) expect(isRetriable(defaults, { kind: "response", status: s })).toBe(true);
    expect(isRetriable(defaults, { kind: "connect-failure" })).toBe(true);
    expect(isRetriable(defaults, { kind: "reset" })).toBe(true);
    expect(isRetriable(defaults, { kind: "timeout" })).toBe(true);
    expect(isRetriable(defaults, { kind: "response", status: 500 })).toBe(false);
    expect(isRetriable(defaults, { kind: "response", status: 429 })).toBe(false);
    expect(isRetriable(defaults, { kind: "response", status: 200 })).toBe(false);
  });

  it("honours 5xx, listed status codes, and connect-failure alone", () => {
    const r = { ...defaults, onGatewayError: false, onReset: false, on5xx: false, onConnectFailure: true, statusCodes: [429] };
    expect(isRetriable(r, { kind: "response", status: 429 })).toBe(true);
    expect(isRetriable(r, { kind: "response", status: 503 })).toBe(false);
    expect(isRetriable(r, { kind: "reset" })).toBe(false);
    expect(isRetriable(r, { kind: "timeout" })).toBe(false);
    expect(isRetriable({ ...r, on5xx: true }, { kind: "response", status: 500 })).toBe(true);
  });

  it("retries only idempotent methods unless the route opts in", () => {
    expect(mayRetryMethod(defaults, "GET")).toBe(true);
    expect(mayRetryMethod(defaults, "PUT")).toBe(true);
    expect(mayRetryMethod(defaults, "POST")).toBe(false);
    expect(mayRetryMethod(defaults, "PATCH")).toBe(false);
    expect(mayRetryMethod({ ...defaults, retryNonIdempotent: true }, "POST")).toBe(true);
  });

  it("tells a broken connection from a failed connect", () => {
    expect(classifyFetchError(new Error("Network connection lost."))).toBe("reset");
    expect(classifyFetchError(new Error("connect ECONNREFUSED 127.0.0.1:9"))).toBe("connect-failure");
  });
});

describe("backoff", () => {
  it("grows exponentially with full jitter and is capped", () => {
    expect(backoffMs(defaults, 1, 0)).toBe(0);
    expect(backoffMs(defaults, 1, 0.999)).toBe(25);
    expect(backoffMs(defaults, 2, 0.999)).toBe(50);
    expect(backoffMs(defaults, 3, 0.999)).toBe(100);
    expect(backoffMs(defaults, 10, 0.999)).toBe(250);
    expect(backoffMs(defaults, 40, 0.999)).toBe(250);
  });

  it("reads Retry-After in seconds or as a date", () => {
    expect(retryAfterMs("2", 0)).toBe(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(retryAfterMs("soon", 0)).toBeUndefined();
    expect(retryAfterMs(null, 0)).toBeUndefined();
  });

  it("uses Retry-After instead of backoff, stops when it is too long or the deadline is near", () => {
    expect(nextRetryWait(defaults, 1, "1", 5000, 0, 0.5)).toEqual({ kind: "wait", ms: 1000 });
    expect(nextRetryWait(defaults, 1, "2", 5000, 0, 0.5)).toEqual({ kind: "stop", reason: "retry-after-too-long" });
    expect(nextRetryWait(defaults, 1, "1", 800, 0, 0.5)).toEqual({ kind: "stop", reason: "deadline" });
    expect(nextRetryWait(defaults, 1, null, 5000, 0, 0.5)).toEqual({ kind: "wait", ms: 13 });
  });
});
