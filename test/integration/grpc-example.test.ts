// The example gRPC service on the real runtime, called directly (not yet through a sidecar) by
// clients generated from its .proto: Connect (JSON and binary) and gRPC-Web transports of
// @connectrpc/connect-web over Node's fetch, against the greeter Workers in workerd.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GreeterService, GreetRequestSchema, GreetResponseSchema } from "../../examples/grpc/gen/edgemesh/example/v1/greeter_pb.ts";
import { instanceName, startMesh, type RunningMesh } from "../../scripts/mesh.ts";
import { greeterTopology } from "../helpers.ts";

const MESH = "grpc-example";
const TOPOLOGY = greeterTopology(MESH);

let mesh: RunningMesh;
const urls: Record<string, string> = {};

beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY, exposeWorkers: TOPOLOGY.services.greeter!.map((i) => instanceName(MESH, i.id)) });
  for (const i of TOPOLOGY.services.greeter!) urls[i.id] = (await mesh.directUrl(instanceName(MESH, i.id))).href;
});

afterAll(async () => {
  await mesh?.dispose();
});

const TRANSPORTS: Record<string, (baseUrl: string) => Transport> = {
  "Connect (JSON)": (baseUrl) => createConnectTransport({ baseUrl, fetch: globalThis.fetch }),
  "Connect (binary)": (baseUrl) => createConnectTransport({ baseUrl, useBinaryFormat: true, fetch: globalThis.fetch }),
  "Connect (GET for unary)": (baseUrl) => createConnectTransport({ baseUrl, useHttpGet: true, fetch: globalThis.fetch }),
  "gRPC-Web": (baseUrl) => createGrpcWebTransport({ baseUrl, fetch: globalThis.fetch }),
};

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe.each(Object.keys(TRANSPORTS))("%s client", (name) => {
  const client = (instance: string): Client<typeof GreeterService> => createClient(GreeterService, TRANSPORTS[name]!(urls[instance]!));

  it("makes a unary call to each version", async () => {
    const v1 = await client("greeter-v1").greet({ name: "ada" });
    expect(v1.greeting).toMatchObject({ text: "Hello, ada!", version: "v1", instance: "greeter-v1", index: 0 });
    const v2 = await client("greeter-v2").greet({ name: "ada" });
    expect(v2.greeting).toMatchObject({ text: "Hi ada, from v2", version: "v2", instance: "greeter-v2" });
  });

  it("streams every message in order", async () => {
    const indexes: number[] = [];
    for await (const res of client("greeter-v2").greetStream({ name: "bo", count: 5 })) {
      expect(res.greeting?.version).toBe("v2");
      indexes.push(res.greeting!.index);
    }
    expect(indexes).toEqual([0, 1, 2, 3, 4]);
  });

  it("delivers a stream message by message: the first arrives before the last is sent", async () => {
    const intervalMs = 400;
    const received: { index: number; receivedAtMs: number; sentAtMs: number }[] = [];
    for await (const res of client("greeter-v1").greetStream({ name: "cy", count: 3, intervalMs })) {
      received.push({ index: res.greeting!.index, receivedAtMs: Date.now(), sentAtMs: res.greeting!.sentAtMs });
    }
    expect(received.map((r) => r.index)).toEqual([0, 1, 2]);
    // Causal, not a timing bound: had anything held the stream back, the first message could
    // only reach the client after the server sent the last one (2 intervals later).
    expect(received[0]!.receivedAtMs).toBeLessThan(received[2]!.sentAtMs);
    expect(received[2]!.sentAtMs - received[0]!.sentAtMs).toBeGreaterThanOrEqual(2 * intervalMs - 50);
  });

  it("answers UNAVAILABLE from an instance set to fail, on unary and streaming calls", async () => {
    expect(await codeOf(client("greeter-broken").greet({ name: "x" }))).toBe(Code.Unavailable);
    expect(await codeOf((async () => {
      for await (const _ of client("greeter-broken").greetStream({ name: "x" })) throw new Error("no message expected");
    })())).toBe(Code.Unavailable);
  });

  it("fails one call on request metadata, only on the instance it names", async () => {
    const failOnV1 = { headers: { "x-greeter-fail": "unavailable", "x-greeter-fail-instance": "greeter-v1" } };
    expect(await codeOf(client("greeter-v1").greet({ name: "x" }, failOnV1))).toBe(Code.Unavailable);
    expect(await codeOf(client("greeter-v2").greet({ name: "x" }, failOnV1))).toBe("ok");
    expect(await codeOf(client("greeter-v2").greet({ name: "x" }, { headers: { "x-greeter-fail": "resource_exhausted" } }))).toBe(Code.ResourceExhausted);
  });

  it("ends a slow call at its deadline with DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    const code = await codeOf(client("greeter-v1").greet({ name: "x" }, { timeoutMs: 300, headers: { "x-greeter-delay-ms": "10000" } }));
    expect(code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("native gRPC straight to a Worker", () => {
  it("gets the message but never a status: a Worker's Response has no trailers", async () => {
    const message = toBinary(GreetRequestSchema, create(GreetRequestSchema, { name: "raw" }));
    const body = new Uint8Array(5 + message.length);
    new DataView(body.buffer).setUint32(1, message.length);
    body.set(message, 5);
    const res = await fetch(new URL("/edgemesh.example.v1.GreeterService/Greet", urls["greeter-v1"]), {
      method: "POST",
      headers: { "content-type": "application/grpc+proto", te: "trailers" },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("grpc-status")).toBeNull();
    const bytes = new Uint8Array(await res.arrayBuffer());
    const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(1);
    expect(bytes[0]).toBe(0);
    // One data frame and nothing after it: the OK status went into trailers that were dropped.
    expect(bytes.length).toBe(5 + length);
    expect(fromBinary(GreetResponseSchema, bytes.subarray(5)).greeting?.text).toBe("Hello, raw!");
  });
});
