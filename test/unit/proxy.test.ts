import { afterEach, describe, expect, it, vi } from "vitest";
import type { ServiceSnapshot } from "../../policies/snapshot.ts";
import { allLoads, tryFinished } from "../../workers/sidecar/balance.ts";
import type { BodyPlan } from "../../workers/sidecar/body.ts";
import { newRetryBudget } from "../../workers/sidecar/budget.ts";
import { recordOutlierOutcome } from "../../workers/sidecar/outlier.ts";
import { detectRpc } from "../../workers/sidecar/grpc/protocol.ts";
import { newResilienceState, proxy, type ProxyRequest, type RpcRequest } from "../../workers/sidecar/proxy.ts";
import { compiledService } from "./resilience-fixtures.ts";

let n = 0;
function setup(route: Record<string, unknown>, upstream: (request: Request) => Promise<Response>, service: Record<string, unknown> = {}) {
  n++;
  const ids = ["a", "b", "c"].map((x) => `p${n}-${x}`);
  const base = compiledService({ subsets: { all: {} }, routes: [{ name: "r", to: [{ subset: "all" }], ...route }], ...service });
  const snapshot: ServiceSnapshot = { ...base, endpoints: base.endpoints.map((e, i) => ({ ...e, id: ids[i]! })), policyVersion: 1, generation: 1, epoch: "e" };
  // Each endpoint's binding tells the upstream which endpoint it is.
  const env = Object.fromEntries(["A", "B", "C"].map((b, i) => [b, { fetch: (r: Request) => (r.headers.set("x-test-endpoint", ids[i]!), upstream(r)) }]));
  const state = newResilienceState(newRetryBudget());
  const request = (method: string, body: BodyPlan, over: Partial<ProxyRequest> = {}): ProxyRequest => ({
    snapshot, route: snapshot.routes[0]!, members: snapshot.subsets["all"]!, method, url: new URL("http://api/x"), headers: new Headers(), body, env,
    colo: "", hashKey: undefined, faultTargeted: true, original: undefined, startedMs: Date.now(), deadlineMs: Date.now() + snapshot.routes[0]!.timeoutMs, readBodies: true, rpc: undefined, ...over,
  });
  const outstanding = () => ids.reduce((sum, id) => sum + (allLoads().get(id)?.outstanding ?? 0), 0);
  return { state, request, outstanding, ids, snapshot };
}

const ok = () => Promise.resolve(new Response("ok"));
const bytes = new TextEncoder().encode("a body");

afterEach(() => {
  vi.useRealTimers();
});

describe("a try that cannot be sent", () => {
  it("a GET with a body goes upstream without it, and no try stays in flight", async () => {
    const seen: (string | null)[] = [];
    const { state, request, outstanding } = setup({}, async (r) => (seen.push(r.body === null ? null : await r.text()), new Response("ok")));
    const result = await proxy(request("GET", { kind: "buffered", bytes }), state);
    expect(result.response.status).toBe(200);
    expect(seen).toEqual([null]);
    tryFinished(result.lease!);
    expect(outstanding()).toBe(0);
  });

  it("a GET with a body on a hedged route answers instead of hanging", async () => {
    const slow = () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response("ok")), 20));
    const { state, request, outstanding } = setup({ hedge: { afterMs: 5 } }, slow);
    const result = await proxy(request("GET", { kind: "buffered", bytes }), state);
    expect(result.response.status).toBe(200);
    tryFinished(result.lease!);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(outstanding()).toBe(0);
  }, 2000);

  it("an upstream that throws is a connect failure naming the error, not a rejected proxy", async () => {
    const { state, request, outstanding } = setup({ retries: { attempts: 0 } }, () => {
      throw new TypeError("cannot send this");
    });
    const result = await proxy(request("POST", { kind: "buffered", bytes }), state);
    expect(result.response.status).toBe(502);
    // The reason is for the operator (debug header), never the body: the client may be anyone.
    const text = await result.response.text();
    expect(JSON.parse(text)).toEqual({ error: "connect-failure", route: "r" });
    expect(text).not.toContain("cannot send this");
    expect(result.errorDetail).toBe("cannot send this");
    expect(outstanding()).toBe(0);
  });
});

describe("an injected delay", () => {
  it("leaves no timer behind when the try's timeout ends it first", async () => {
    vi.useFakeTimers();
    const { state, request } = setup({ timeoutMs: 100, retries: { attempts: 0 }, fault: { delay: { percent: 100, ms: 60_000 } } }, ok);
    const running = proxy(request("GET", { kind: "none" }), state);
    await vi.advanceTimersByTimeAsync(150);
    expect((await running).response.status).toBe(504);
    expect(vi.getTimerCount()).toBe(0);
  });
});

/** An upstream that answers `status` after `delayMs` (fake timers advance it), counting calls per endpoint. */
function answering(status: number, delayMs: number, delays: Record<string, number> = {}) {
  const calls: string[] = [];
  const fetch = (r: Request) => {
    const id = r.headers.get("x-test-endpoint")!;
    calls.push(id);
    return new Promise<Response>((resolve) => setTimeout(() => resolve(new Response(String(status), { status })), delays[id] ?? delayMs));
  };
  return { calls, fetch };
}

describe("the try that answers", () => {
  it("stays in flight (and its endpoint loaded) until whoever holds the response finishes it", async () => {
    const { state, request, outstanding } = setup({}, ok);
    const result = await proxy(request("GET", { kind: "none" }), state);
    expect(result.response.status).toBe(200);
    expect(outstanding()).toBe(1);
    tryFinished(result.lease!);
    expect(outstanding()).toBe(0);
  });
});

describe("attempts bound every try, hedges included", () => {
  it("sends at most 1 + attempts tries when hedges and retries both fire", async () => {
    vi.useFakeTimers();
    const upstream = answering(503, 20);
    const { state, request } = setup({ retries: { attempts: 2, backoff: { baseMs: 1, maxMs: 1 } }, hedge: { afterMs: 5 } }, upstream.fetch, { retryBudget: { percent: 100, minRetriesPerSecond: 100 } });
    const running = proxy(request("GET", { kind: "none" }), state);
    await vi.advanceTimersByTimeAsync(1000);
    const result = await running;
    expect(result.response.status).toBe(503);
    expect(upstream.calls.length).toBe(3);
    expect(result.tries).toBe(3);
    expect(result.hedged).toBe(true);
  });
});

describe("a hedged-away try", () => {
  it("teaches the balancer a lower bound of its latency", async () => {
    vi.useFakeTimers();
    const { state, request, ids } = setup({ hedge: { afterMs: 40 } }, ok);
    // The first endpoint picked is slow; whichever it is, the hedge goes elsewhere and wins.
    const slow = answering(200, 1000);
    const fast = answering(200, 1);
    const req = request("GET", { kind: "none" });
    let first: string | undefined;
    req.env = Object.fromEntries(["A", "B", "C"].map((b, i) => [b, { fetch: (r: Request) => {
      r.headers.set("x-test-endpoint", ids[i]!);
      first ??= ids[i]!;
      return (first === ids[i] ? slow : fast).fetch(r);
    } }]));
    const running = proxy(req, state);
    await vi.advanceTimersByTimeAsync(100);
    const result = await running;
    expect(result.hedged).toBe(true);
    expect(result.response.status).toBe(200);
    tryFinished(result.lease!);
    expect(allLoads().get(first!)!.ewmaMs).toBeGreaterThanOrEqual(40);
  });
});

describe("no try once the route's deadline has passed", () => {
  it("answers 504 without sending anything when the deadline was spent before proxying (a slow upload, a long queue)", async () => {
    const upstream = answering(200, 0);
    const { state, request } = setup({ timeoutMs: 100 }, upstream.fetch);
    const result = await proxy(request("PUT", { kind: "buffered", bytes }, { startedMs: Date.now() - 101, deadlineMs: Date.now() - 1 }), state);
    expect(result.response.status).toBe(504);
    expect(((await result.response.json()) as { error: string }).error).toBe("route-timeout");
    expect(upstream.calls).toEqual([]);
    expect(result.tries).toBe(0);
  });
});

describe("probes of ejected endpoints", () => {
  function withEjected(route: Record<string, unknown>) {
    const upstream = answering(200, 0);
    const s = setup(route, upstream.fetch, { outlierDetection: { consecutiveGatewayErrors: 1, baseEjectionMs: 10 } });
    // Ejected 10 ms long, so by the time the request comes its ejection is over and a probe is due.
    recordOutlierOutcome(s.state.outliers, s.snapshot.outlierDetection, s.ids[0]!, "gateway-error", 3, Date.now() - 1000);
    return { ...s, upstream };
  }

  it("only use requests that may be retried: a POST is never the probe", async () => {
    const { state, request, upstream, ids } = withEjected({});
    for (let i = 0; i < 20; i++) tryFinished((await proxy(request("POST", { kind: "buffered", bytes }), state)).lease!);
    expect(upstream.calls).not.toContain(ids[0]);
    expect(state.outliers.endpoints.get(ids[0]!)!.phase).toBe("ejected");
    // A GET may be retried: it takes the probe.
    tryFinished((await proxy(request("GET", { kind: "none" }), state)).lease!);
    expect(upstream.calls.at(-1)).toBe(ids[0]);
  });

  it("are not taken by requests whose route does not retry", async () => {
    const { state, request, upstream, ids } = withEjected({ retries: { attempts: 0 } });
    for (let i = 0; i < 20; i++) tryFinished((await proxy(request("GET", { kind: "none" }), state)).lease!);
    expect(upstream.calls).not.toContain(ids[0]);
  });
});

describe("outlier and load state follow only newer snapshots", () => {
  it("a request still holding an older snapshot does not undo what a newer one brought", async () => {
    const { state, request, snapshot, ids } = setup({}, ok, { outlierDetection: { consecutiveGatewayErrors: 1, baseEjectionMs: 60_000 } });
    // Generation 2 adds endpoint "new", which gets ejected.
    const newer: ServiceSnapshot = { ...snapshot, generation: 2, endpoints: [...snapshot.endpoints, { id: `${ids[0]}-new`, binding: "A", labels: {}, weight: 1 }] };
    tryFinished((await proxy(request("GET", { kind: "none" }, { snapshot: newer }), state)).lease!);
    recordOutlierOutcome(state.outliers, newer.outlierDetection, `${ids[0]}-new`, "gateway-error", 4, Date.now());
    expect(state.outliers.ejectedCount).toBe(1);
    // A request that started under generation 1 finishes now.
    tryFinished((await proxy(request("GET", { kind: "none" }, { snapshot }), state)).lease!);
    expect(state.outliers.endpoints.get(`${ids[0]}-new`)?.phase).toBe("ejected");
    expect(state.outliers.ejectedCount).toBe(1);
  });
});

describe("RPC tries", () => {
  const utf8 = new TextEncoder();
  const grpcWeb = detectRpc("POST", "/pkg.Svc/Do", "", new Headers({ "content-type": "application/grpc-web+proto" }))!;
  const frame = (flags: number, payload: Uint8Array) => {
    const out = new Uint8Array(5 + payload.length);
    out[0] = flags;
    new DataView(out.buffer).setUint32(1, payload.length);
    out.set(payload, 5);
    return out;
  };
  const trailer = (code: number) => frame(0x80, utf8.encode(`grpc-status: ${code}\r\n`));
  /** A gRPC-Web answer whose whole body (a message and the trailer with `code`) is there at once. */
  const whole = (code: number) => {
    const message = frame(0, new Uint8Array(3));
    const end = trailer(code);
    const body = new Uint8Array(message.length + end.length);
    body.set(message);
    body.set(end, message.length);
    return new Response(body, { headers: { "content-type": "application/grpc-web+proto" } });
  };
  const rpcRequest = (rpc: Partial<RpcRequest> = {}) => ({ rpc: { call: grpcWeb, propagate: false, callerDeadline: false, ...rpc } });
  const retryOnUnavailable = { retries: { attempts: 2, retryOn: ["unavailable"], backoff: { baseMs: 1, maxMs: 1 } } };

  it("are retried on a gRPC code the route names, found in the trailer of an HTTP 200", async () => {
    const seen: string[] = [];
    const { state, request, outstanding } = setup(retryOnUnavailable, async (r) => (seen.push(r.headers.get("x-test-endpoint")!), whole(seen.length === 1 ? 14 : 0)));
    const result = await proxy(request("POST", { kind: "buffered", bytes }, rpcRequest()), state);
    expect(seen).toHaveLength(2);
    expect(seen[1]).not.toBe(seen[0]);
    expect(result.rpcStatus).toMatchObject({ code: 0, source: "trailer" });
    expect(result.body?.complete).toBe(true);
    // The failing endpoint's UNAVAILABLE counted as a gateway error, like a 503.
    expect(state.outliers.endpoints.get(seen[0]!)).toMatchObject({ consecutiveGatewayErrors: 1 });
    tryFinished(result.lease!);
    expect(outstanding()).toBe(0);
  });

  it("are not retried on a code the route does not name, nor without gRPC codes in retryOn (a POST)", async () => {
    let calls = 0;
    const internal = setup(retryOnUnavailable, async () => (calls++, whole(13)));
    tryFinished((await proxy(internal.request("POST", { kind: "buffered", bytes }, rpcRequest()), internal.state)).lease!);
    expect(calls).toBe(1);
    calls = 0;
    const httpOnly = setup({ retries: { attempts: 2, retryOn: ["5xx"] } }, async () => (calls++, whole(14)));
    tryFinished((await proxy(httpOnly.request("POST", { kind: "buffered", bytes }, rpcRequest()), httpOnly.state)).lease!);
    expect(calls).toBe(1);
  });

  it("tell the upstream what is left of the caller's deadline, in the protocol's header", async () => {
    let sent = "";
    const { state, request } = setup({}, async (r) => ((sent = r.headers.get("grpc-timeout") ?? ""), whole(0)));
    const startedMs = Date.now();
    const result = await proxy(request("POST", { kind: "buffered", bytes }, { ...rpcRequest({ propagate: true }), headers: new Headers(), startedMs, deadlineMs: startedMs + 250 }), state);
    tryFinished(result.lease!);
    const ms = Number(/^(\d+)m$/.exec(sent)?.[1]);
    expect(ms).toBeGreaterThan(150);
    expect(ms).toBeLessThanOrEqual(250);
  });

  it("of a stream record its outcome when the status comes at the end; a client that left counts for nothing", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const { state, request, ids } = setup({}, async () => new Response(new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) }), { headers: { "content-type": "application/grpc-web+proto" } }), { outlierDetection: { consecutiveGatewayErrors: 2 } });
    const result = await proxy(request("POST", { kind: "buffered", bytes }, rpcRequest()), state);
    controller.close();
    expect(result.rpcStatus).toBeUndefined();
    expect(result.pendingOutcome).toBeDefined();
    const endpoint = ids[result.endpoint]!;
    expect(state.outliers.endpoints.get(endpoint)?.consecutiveGatewayErrors ?? 0).toBe(0);
    result.pendingOutcome!.record(200, { code: 14, message: "", source: "trailer" });
    expect(state.outliers.endpoints.get(endpoint)).toMatchObject({ consecutiveGatewayErrors: 1 });
    result.pendingOutcome!.record(200, { code: 1, message: "client went away", source: "aborted" });
    expect(state.outliers.endpoints.get(endpoint)).toMatchObject({ consecutiveGatewayErrors: 1 });
    tryFinished(result.lease!);
  });
});
