// gRPC-Web and Connect calls through the greeter's sidecar in the local mesh, made by the clients
// generated from the .proto (@connectrpc/connect with the Connect and gRPC-Web transports of
// @connectrpc/connect-web) over a real socket: routing and canaries by method, streams message by
// message, retries and ejection on UNAVAILABLE, deadlines end to end, the sidecar's own errors in
// the caller's protocol, native gRPC refused, and the gRPC status in telemetry.
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GreeterService } from "../../examples/grpc/gen/edgemesh/example/v1/greeter_pb.ts";
import { startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { GrpcCode } from "../../workers/sidecar/grpc/codes.ts";
import { greeterTopology } from "../helpers.ts";
import { eventually } from "./resilience-helpers.ts";

const MESH = "grpc-mesh";
const SERVICE = "edgemesh.example.v1.GreeterService";
const TOPOLOGY = greeterTopology(MESH);

const method = (name: string) => ({ grpc: { service: { exact: SERVICE }, method: { exact: name } } });
const endpoint = (id: string, version: string) => ({ id, binding: id.toUpperCase().replace(/-/g, "_"), labels: { version } });
const RETRY_ON_UNAVAILABLE = { attempts: 2, retryOn: ["unavailable", "connect-failure", "reset"], backoff: { baseMs: 1, maxMs: 5 } };

/** The greeter's policy: GreetStream to v2, Greet a 90/10 canary, and routes that make the sidecar answer itself. */
function greeterPolicy(over: { greetRoute?: Record<string, unknown>; service?: Record<string, unknown>; endpoints?: unknown[] } = {}) {
  return {
    mesh: MESH,
    services: {
      greeter: {
        endpoints: over.endpoints ?? [endpoint("greeter-v1", "v1"), endpoint("greeter-v2", "v2")],
        subsets: { v1: { version: "v1" }, v2: { version: "v2" }, nowhere: { version: "v9" } },
        routes: [
          // x-test-no-endpoint: a subset without endpoints; x-test-fault: an injected 503.
          { name: "to-nowhere", match: [{ headers: { "x-test-no-endpoint": { present: true } } }], to: [{ subset: "nowhere" }] },
          { name: "faulty", match: [{ headers: { "x-test-fault": { present: true } } }], to: [{ subset: "v1" }], fault: { abort: { percent: 100, status: 503 } } },
          { name: "stream-to-v2", match: [{ ...method("GreetStream"), headers: { "x-test-no-route": { present: false } } }], to: [{ subset: "v2" }], timeoutMs: 60_000 },
          {
            name: "greet-canary",
            // x-test-no-route: no route takes the call.
            match: [{ ...method("Greet"), headers: { "x-test-no-route": { present: false } } }],
            to: [{ subset: "v1", weight: 90 }, { subset: "v2", weight: 10 }],
            retries: RETRY_ON_UNAVAILABLE,
            ...over.greetRoute,
          },
        ],
        ...over.service,
      },
    },
  };
}

let mesh: RunningMesh;

/** The sidecar's snapshot, after a request that makes it revalidate (debug endpoints do not). */
async function sidecarStatus(): Promise<{ snapshot: { generation: number } | null }> {
  await (await fetch(new URL("/__warmup", mesh.url))).arrayBuffer();
  return mesh.sidecarView("greeter", "status");
}

/** Applies `doc` and waits until the sidecar serves the greeter's snapshot of it. */
async function apply(doc: unknown): Promise<void> {
  const res = await mesh.applyPolicy(doc);
  expect(res.status, await res.text()).toBe(201);
  const { generation } = (await (await mesh.admin("/v1/snapshot/greeter")).json()) as { generation: number };
  const served = await eventually(sidecarStatus, (s) => s.snapshot?.generation === generation);
  expect(served.snapshot?.generation).toBe(generation);
}

beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY, sidecarVars: { SNAPSHOT_TTL_MS: "100", TELEMETRY_FLUSH_MS: "100" } });
  await apply(greeterPolicy());
});

afterAll(async () => {
  await mesh?.dispose();
});

const TRANSPORTS: Record<string, () => Transport> = {
  Connect: () => createConnectTransport({ baseUrl: mesh.url.href, fetch: globalThis.fetch }),
  "Connect (binary)": () => createConnectTransport({ baseUrl: mesh.url.href, useBinaryFormat: true, fetch: globalThis.fetch }),
  "gRPC-Web": () => createGrpcWebTransport({ baseUrl: mesh.url.href, fetch: globalThis.fetch }),
};

async function failure(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

describe.each(Object.keys(TRANSPORTS))("%s through the greeter's sidecar", (name) => {
  const client = (): Client<typeof GreeterService> => createClient(GreeterService, TRANSPORTS[name]!());

  it("makes unary calls", async () => {
    const res = await client().greet({ name: "ada" });
    expect(res.greeting?.text).toMatch(/ada/);
    expect(["v1", "v2"]).toContain(res.greeting?.version);
  });

  it("delivers a server stream message by message, routed by its method to v2", async () => {
    const received: { receivedAtMs: number; sentAtMs: number; version: string }[] = [];
    for await (const res of client().greetStream({ name: "s", count: 3, intervalMs: 400 })) {
      received.push({ receivedAtMs: Date.now(), sentAtMs: res.greeting!.sentAtMs, version: res.greeting!.version });
    }
    expect(received.map((r) => r.version)).toEqual(["v2", "v2", "v2"]);
    // Causal: the first message reached the client before the server had made the last one.
    expect(received[0]!.receivedAtMs).toBeLessThan(received[2]!.sentAtMs);
  });

  // 500 calls at 10%: one standard deviation is 1.3 points, so ±5 is 3.7 of them.
  it("splits Greet 90/10 by its method's route: v2 within ±5 points over 500 calls", async () => {
    const c = client();
    const counts: Record<string, number> = {};
    let started = 0;
    const worker = async () => {
      while (started < 500) {
        started++;
        const res = await c.greet({ name: "n" });
        counts[res.greeting!.version] = (counts[res.greeting!.version] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(500);
    expect(Math.abs(((counts.v2 ?? 0) / 500) * 100 - 10)).toBeLessThanOrEqual(5);
  });

  it("passes an instance's own error on when the route does not retry its code", async () => {
    const err = await failure(() => client().greet({ name: "x" }, { headers: { "x-greeter-fail": "internal" } }));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("failing as asked by x-greeter-fail");
  });

  it("propagates the caller's deadline, as what is left of it, and the upstream ends the call at it", async () => {
    let left = "";
    await client().greet({ name: "x" }, { timeoutMs: 5_000, onHeader: (h) => void (left = h.get("x-greeter-timeout-ms") ?? "") });
    expect(Number(left)).toBeGreaterThan(3_000);
    expect(Number(left)).toBeLessThanOrEqual(5_000);
    const started = Date.now();
    const err = await failure(() => client().greet({ name: "x" }, { timeoutMs: 300, headers: { "x-greeter-delay-ms": "10000" } }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("answers the sidecar's own errors in the caller's protocol, read by its client as the right code", async () => {
    const cases: [Record<string, string>, Code, string][] = [
      [{ "x-test-no-route": "1" }, Code.Unimplemented, "x-edgemesh-no-route"],
      [{ "x-test-no-endpoint": "1" }, Code.Unavailable, "x-edgemesh-error"],
      [{ "x-test-fault": "1" }, Code.Unavailable, "x-edgemesh-fault"],
    ];
    for (const [headers, code, reasonHeader] of cases) {
      const unary = await failure(() => client().greet({ name: "x" }, { headers }));
      expect([reasonHeader, unary.code]).toEqual([reasonHeader, code]);
      expect(unary.rawMessage).toMatch(/^edgemesh: /);
      expect(unary.metadata.get("x-edgemesh-generated")).toBe("1");
      expect(unary.metadata.get(reasonHeader)).not.toBeNull();
      const streaming = await failure(() => drain(client().greetStream({ name: "x" }, { headers })));
      expect([reasonHeader, streaming.code]).toEqual([reasonHeader, code]);
    }
  });
});

describe("retries and ejection on a gRPC code", () => {
  it("retries an instance's UNAVAILABLE on another instance, and ejects the instance", async () => {
    await apply(greeterPolicy({ endpoints: [endpoint("greeter-v1", "v1"), endpoint("greeter-v2", "v1"), endpoint("greeter-broken", "v1")], greetRoute: { to: [{ subset: "v1" }] } }));
    const grpcWeb = createClient(GreeterService, TRANSPORTS["gRPC-Web"]!());
    const connect = createClient(GreeterService, TRANSPORTS.Connect!());
    const instances: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      // gRPC-Web carries the failure in a trailer frame of an HTTP 200, Connect in an HTTP 503.
      const res = await (i % 2 === 0 ? grpcWeb : connect).greet({ name: "r" });
      instances[res.greeting!.instance] = (instances[res.greeting!.instance] ?? 0) + 1;
    }
    // Every call succeeded: the broken instance never answered one.
    expect(instances["greeter-broken"]).toBeUndefined();
    expect((instances["greeter-v1"] ?? 0) + (instances["greeter-v2"] ?? 0)).toBe(60);
    const outliers = (await mesh.sidecarView("greeter", "outliers")) as { endpoints: Record<string, { phase: string }>; events: { endpoint: string; event: string; reason: string }[] };
    const ejections = outliers.events.filter((e) => e.endpoint === "greeter-broken" && e.event === "ejected");
    expect(ejections.length).toBeGreaterThan(0);
    expect(ejections[0]!.reason).toMatch(/consecutive/);
    await apply(greeterPolicy());
  });
});

describe("deadlines", () => {
  it("caps the caller's deadline by the route's and propagates what is left", async () => {
    await apply(greeterPolicy({ greetRoute: { timeoutMs: 300 } }));
    for (const transport of ["Connect", "gRPC-Web"]) {
      const c = createClient(GreeterService, TRANSPORTS[transport]!());
      let left = "";
      await c.greet({ name: "x" }, { timeoutMs: 20_000, onHeader: (h) => void (left = h.get("x-greeter-timeout-ms") ?? "") });
      expect([transport, Number(left) > 0 && Number(left) <= 300]).toEqual([transport, true]);
      // The caller would wait 20 s, the server 10 s: the route's 300 ms ends the call.
      const started = Date.now();
      const err = await failure(() => c.greet({ name: "x" }, { timeoutMs: 20_000, headers: { "x-greeter-delay-ms": "10000" } }));
      expect([transport, err.code]).toEqual([transport, Code.DeadlineExceeded]);
      expect(Date.now() - started).toBeLessThan(5_000);
    }
  });

  it("enforces the route's deadline itself when the caller set none, in the caller's protocol", async () => {
    await apply(greeterPolicy({ greetRoute: { timeoutMs: 300 } }));
    for (const transport of ["Connect", "gRPC-Web"]) {
      const c = createClient(GreeterService, TRANSPORTS[transport]!());
      let left: string | null = "unset";
      await c.greet({ name: "x" }, { onHeader: (h) => void (left = h.get("x-greeter-timeout-ms")) });
      // No deadline was invented for the upstream.
      expect([transport, left]).toEqual([transport, null]);
      const err = await failure(() => c.greet({ name: "x" }, { headers: { "x-greeter-delay-ms": "10000" } }));
      expect([transport, err.code]).toEqual([transport, Code.DeadlineExceeded]);
      expect(err.metadata.get("x-edgemesh-timeout")).toBe("route-timeout");
    }
  });

  it("answers a call whose deadline has already passed with DEADLINE_EXCEEDED, without an upstream call", async () => {
    await apply(greeterPolicy());
    const res = await fetch(new URL(`/${SERVICE}/Greet`, mesh.url), {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1", "connect-timeout-ms": "0" },
      body: JSON.stringify({ name: "late" }),
    });
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ code: "deadline_exceeded", message: expect.stringMatching(/caller-deadline/) });
  });
});

describe("the sidecar's own errors", () => {
  it("sheds load with UNAVAILABLE when its circuit breaker is full", async () => {
    await apply(greeterPolicy({ service: { circuitBreaker: { maxConcurrent: 1, maxPending: 0 } } }));
    for (const transport of ["Connect", "gRPC-Web"]) {
      const c = createClient(GreeterService, TRANSPORTS[transport]!());
      const slow = c.greet({ name: "slow" }, { headers: { "x-greeter-delay-ms": "1500" } });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const shed = await failure(() => c.greet({ name: "shed" }));
      expect([transport, shed.code]).toEqual([transport, Code.Unavailable]);
      expect(shed.metadata.get("x-edgemesh-overloaded")).toBe("max-pending");
      await slow;
    }
    await apply(greeterPolicy());
  });

  it("refuses native gRPC at once, trailers-only, saying why and what to do", async () => {
    const res = await fetch(new URL(`/${SERVICE}/Greet`, mesh.url), {
      method: "POST",
      headers: { "content-type": "application/grpc+proto", te: "trailers" },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("grpc-status")).toBe(String(GrpcCode.UNIMPLEMENTED));
    expect(res.headers.get("x-edgemesh-error")).toBe("grpc-native-unsupported");
    expect(decodeURIComponent(res.headers.get("grpc-message")!)).toMatch(/HTTP\/2 trailers.*gRPC-Web or Connect/);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });
});

describe("telemetry", () => {
  it("records each call's protocol, service, method and gRPC status", async () => {
    await apply(greeterPolicy());
    const c = createClient(GreeterService, TRANSPORTS["gRPC-Web"]!());
    await c.greet({ name: "t" });
    await failure(() => c.greet({ name: "t" }, { headers: { "x-greeter-fail": "permission_denied" } }));
    await drain(c.greetStream({ name: "t", count: 2 }));
    type Row = { protocol: string; service: string; method: string; grpc_status: number; outcome: string };
    const query = `SELECT blob11 AS protocol, blob12 AS service, blob13 AS method, double8 AS grpc_status, blob7 AS outcome FROM edgemesh_requests WHERE blob3 = 'greeter' AND blob11 = 'grpc-web'`;
    const read = async () => ((await (await mesh.admin("/v1/analytics/sql", { method: "POST", body: query })).json()) as { data: Row[] }).data;
    const rows = await eventually(read, (r) => r.some((x) => x.method === "GreetStream") && r.some((x) => x.grpc_status === GrpcCode.PERMISSION_DENIED));
    expect(rows.some((r) => r.method === "Greet" && r.grpc_status === GrpcCode.OK && r.outcome === "ok")).toBe(true);
    // A stream's status is known at its end: recorded then.
    expect(rows.some((r) => r.method === "GreetStream" && r.grpc_status === GrpcCode.OK)).toBe(true);
    expect(rows.find((r) => r.grpc_status === GrpcCode.PERMISSION_DENIED)).toMatchObject({ service: SERVICE, method: "Greet", protocol: "grpc-web" });
  });
});
