// gRPC-Web and Connect calls through the greeter's sidecar, with what the sidecar does for them
// today: routing and splitting by gRPC service and method (a `grpc` match compiles into the path
// matcher) and streaming responses passed through as they come.
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GreeterService } from "../../examples/grpc/gen/edgemesh/example/v1/greeter_pb.ts";
import { startMesh, type RunningMesh } from "../../scripts/mesh.ts";

const SERVICE = "edgemesh.example.v1.GreeterService";
let mesh: RunningMesh;

const POLICY = {
  mesh: "grpc-mesh",
  services: {
    greeter: {
      endpoints: [
        { id: "greeter-v1", binding: "GREETER_V1", labels: { version: "v1" } },
        { id: "greeter-v2", binding: "GREETER_V2", labels: { version: "v2" } },
      ],
      subsets: { v1: { version: "v1" }, v2: { version: "v2" } },
      routes: [
        { name: "stream-to-v2", match: [{ grpc: { service: { exact: SERVICE }, method: { exact: "GreetStream" } } }], to: [{ subset: "v2" }] },
        { name: "greet-canary", match: [{ grpc: { service: { exact: SERVICE }, method: { exact: "Greet" } } }], to: [{ subset: "v1", weight: 90 }, { subset: "v2", weight: 10 }] },
      ],
    },
  },
};

beforeAll(async () => {
  mesh = await startMesh({
    topology: {
      mesh: "grpc-mesh",
      services: {
        greeter: [
          { id: "greeter-v1", binding: "GREETER_V1", script: "grpc-greeter", vars: { VERSION: "v1" } },
          { id: "greeter-v2", binding: "GREETER_V2", script: "grpc-greeter", vars: { VERSION: "v2" } },
        ],
      },
    },
  });
  const applied = await mesh.applyPolicy(POLICY, 0);
  expect(applied.status).toBe(201);
});

afterAll(async () => {
  await mesh?.dispose();
});

const TRANSPORTS: Record<string, () => Transport> = {
  Connect: () => createConnectTransport({ baseUrl: mesh.url.href, fetch: globalThis.fetch }),
  "gRPC-Web": () => createGrpcWebTransport({ baseUrl: mesh.url.href, fetch: globalThis.fetch }),
};

describe.each(Object.keys(TRANSPORTS))("%s through the sidecar", (name) => {
  const client = (): Client<typeof GreeterService> => createClient(GreeterService, TRANSPORTS[name]!());

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

  it("routes GreetStream to v2 only, delivering it message by message", async () => {
    const received: { receivedAtMs: number; sentAtMs: number; version: string }[] = [];
    for await (const res of client().greetStream({ name: "s", count: 3, intervalMs: 400 })) {
      received.push({ receivedAtMs: Date.now(), sentAtMs: res.greeting!.sentAtMs, version: res.greeting!.version });
    }
    expect(received.map((r) => r.version)).toEqual(["v2", "v2", "v2"]);
    expect(received[0]!.receivedAtMs).toBeLessThan(received[2]!.sentAtMs);
  });

  it("passes an instance's UNAVAILABLE on to the caller", async () => {
    try {
      await client().greet({ name: "x" }, { headers: { "x-greeter-fail": "unavailable" } });
      throw new Error("the call succeeded");
    } catch (err) {
      expect(ConnectError.from(err).code).toBe(Code.Unavailable);
    }
  });
});
