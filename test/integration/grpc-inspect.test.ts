// The sidecar's gRPC modules (workers/sidecar/grpc/) on the real runtime, before they are wired
// into the pipeline: a probe Worker (test/workers/grpc-probe.ts) runs them between real Connect
// and gRPC-Web clients and the example greeter, and the clients' own libraries judge the result.
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GreeterService } from "../../examples/grpc/gen/edgemesh/example/v1/greeter_pb.ts";
import { GrpcCode } from "../../workers/sidecar/grpc/codes.ts";
import { instanceName, startMesh, type RunningMesh } from "../../scripts/mesh.ts";

const MESH = "grpc-inspect";
const PROBE = "grpc-probe";
let mesh: RunningMesh;
let probeUrl: string;
let nextId = 0;

beforeAll(async () => {
  mesh = await startMesh({
    topology: {
      mesh: MESH,
      services: { greeter: [{ id: "greeter-v1", binding: "GREETER_V1", script: "grpc-greeter", vars: { VERSION: "v1" } }] },
      extraWorkers: [{ name: PROBE, script: "test-grpc-probe", serviceBindings: { UPSTREAM: instanceName(MESH, "greeter-v1") } }],
    },
    exposeWorkers: [PROBE],
  });
  probeUrl = (await mesh.directUrl(PROBE)).href;
});

afterAll(async () => {
  await mesh?.dispose();
});

const TRANSPORTS: Record<string, () => Transport> = {
  "Connect (JSON)": () => createConnectTransport({ baseUrl: probeUrl, fetch: globalThis.fetch }),
  "Connect (binary)": () => createConnectTransport({ baseUrl: probeUrl, useBinaryFormat: true, fetch: globalThis.fetch }),
  "gRPC-Web": () => createGrpcWebTransport({ baseUrl: probeUrl, fetch: globalThis.fetch }),
};

async function finalOf(id: string): Promise<{ code: number; message: string; source: string }> {
  return (await fetch(new URL(`/__probe/final?id=${id}`, probeUrl))).json() as never;
}

async function failure(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

describe.each(Object.keys(TRANSPORTS))("%s through the gRPC modules in workerd", (name) => {
  const client = (): Client<typeof GreeterService> => createClient(GreeterService, TRANSPORTS[name]!());
  const isGrpcWeb = name === "gRPC-Web";

  it("passes a unary call through and reports OK", async () => {
    const id = `u${nextId++}`;
    const res = await client().greet({ name: "ada" }, { headers: { "x-probe-id": id } });
    expect(res.greeting?.text).toBe("Hello, ada!");
    expect(await finalOf(id)).toMatchObject({ code: GrpcCode.OK, source: isGrpcWeb ? "trailer" : "http-status" });
  });

  it("passes a stream through message by message and reports its status at the end", async () => {
    const id = `s${nextId++}`;
    const received: { receivedAtMs: number; sentAtMs: number }[] = [];
    for await (const res of client().greetStream({ name: "bo", count: 3, intervalMs: 400 }, { headers: { "x-probe-id": id, "x-probe-peek": "1" } })) {
      received.push({ receivedAtMs: Date.now(), sentAtMs: res.greeting!.sentAtMs });
    }
    expect(received).toHaveLength(3);
    // Causal: the first message reached the client before the server had sent the last one.
    expect(received[0]!.receivedAtMs).toBeLessThan(received[2]!.sentAtMs);
    expect(await finalOf(id)).toMatchObject({ code: GrpcCode.OK, source: isGrpcWeb ? "trailer" : "end-stream" });
  });

  it("sees UNAVAILABLE before passing anything on when the body starts with it (peek)", async () => {
    const id = `f${nextId++}`;
    const err = await failure(() => client().greet({ name: "x" }, { headers: { "x-probe-id": id, "x-probe-peek": "1", "x-greeter-fail": "unavailable" } }));
    expect(err.code).toBe(Code.Unavailable);
    // A unary error hands the response headers to the caller as the error's metadata.
    expect(err.metadata.get("x-probe-early")).toBe(`${GrpcCode.UNAVAILABLE} ${isGrpcWeb ? "trailer" : "error-body"}`);
    expect(await finalOf(id)).toMatchObject({ code: GrpcCode.UNAVAILABLE, message: "failing as asked by x-greeter-fail" });
  });

  it("sees a stream's error in its end-of-stream message or trailer", async () => {
    const id = `e${nextId++}`;
    let early = "";
    const err = await failure(async () => {
      for await (const _ of client().greetStream({ name: "x" }, {
        headers: { "x-probe-id": id, "x-probe-peek": "1", "x-greeter-fail": "resource_exhausted" },
        onHeader: (h) => void (early = h.get("x-probe-early") ?? ""),
      }));
    });
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(early).toBe(`${GrpcCode.RESOURCE_EXHAUSTED} ${isGrpcWeb ? "trailer" : "end-stream"}`);
    expect((await finalOf(id)).code).toBe(GrpcCode.RESOURCE_EXHAUSTED);
  });

  it.each([
    ["504 x-edgemesh-timeout route-timeout", Code.DeadlineExceeded],
    ["404 x-edgemesh-no-route no-route-matched", Code.Unimplemented],
    ["503 x-edgemesh-overloaded max-pending", Code.Unavailable],
    ["503 x-edgemesh-error no-endpoint", Code.Unavailable],
    ["403 x-edgemesh-denied-by rule-1", Code.PermissionDenied],
  ])("gets the sidecar's own error %s as code %s, on unary and streaming calls", async (meshErr, code) => {
    const headers = { "x-probe-mesh-error": meshErr };
    const unary = await failure(() => client().greet({ name: "x" }, { headers }));
    expect(unary.code).toBe(code);
    expect(unary.rawMessage).toContain(`edgemesh: ${meshErr.split(" ")[2]}`);
    expect(unary.metadata.get("x-edgemesh-generated")).toBe("1");
    const streaming = await failure(async () => {
      for await (const _ of client().greetStream({ name: "x" }, { headers }));
    });
    expect(streaming.code).toBe(code);
  });

  it("caps the caller's deadline by the route's and propagates what is left, so the server gives up", async () => {
    const started = Date.now();
    const err = await failure(() => client().greet({ name: "x" }, {
      timeoutMs: 20_000,
      headers: { "x-probe-route-timeout-ms": "300", "x-probe-enforce": "0", "x-greeter-delay-ms": "10000" },
    }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    // Neither the client's 20 s nor the server's 10 s delay ended the call: the propagated 300 ms did.
    expect(Date.now() - started).toBeLessThan(5_000);
    const propagated = err.metadata.get("x-probe-propagated") ?? "";
    const value = (isGrpcWeb ? /^grpc-timeout: (\d+)m$/ : /^connect-timeout-ms: (\d+)$/).exec(propagated);
    expect(value, propagated).not.toBeNull();
    expect(Number(value![1])).toBeGreaterThan(200);
    expect(Number(value![1])).toBeLessThanOrEqual(300);
  });

  it("ends a call at the route's timeout in the caller's protocol when the upstream is slower", async () => {
    const err = await failure(() => client().greet({ name: "x" }, { headers: { "x-probe-route-timeout-ms": "300", "x-greeter-delay-ms": "10000" } }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.metadata.get("x-edgemesh-timeout")).toBe("route-timeout");
  });
});

describe("native gRPC at the probe", () => {
  it("is answered UNIMPLEMENTED, trailers-only, with the reason", async () => {
    const res = await fetch(new URL("/edgemesh.example.v1.GreeterService/Greet", probeUrl), {
      method: "POST",
      headers: { "content-type": "application/grpc+proto" },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("grpc-status")).toBe(String(GrpcCode.UNIMPLEMENTED));
    expect(decodeURIComponent(res.headers.get("grpc-message")!)).toMatch(/HTTP\/2 trailers/);
    expect(await res.arrayBuffer()).toHaveProperty("byteLength", 0);
  });
});
