// The Gateway API mesh conformance cases on the real local mesh: each case's HTTPRoute goes
// through POST /v1/import?apply=true (the importer running inside the control Worker), then its
// table of requests is sent through the echo service's sidecar and checked: which backend
// answered, what it received, the response, redirects. One mesh for the file; every case starts
// from the same base policy.
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sidecarName, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";
import { CASES, type ConformanceCase, type Expectation } from "./cases.ts";

const MESH = "gamma";

const TOPOLOGY: Topology = {
  mesh: MESH,
  services: {
    echo: [
      { id: "echo-v1", binding: "ECHO_V1", script: "test-echo" },
      { id: "echo-v2", binding: "ECHO_V2", script: "test-echo" },
    ],
    // The echo-v2 Service as a mesh service of its own (MeshFrontend): the v2 deployment again.
    "echo-v2": [{ id: "echo-v2-frontend", binding: "ECHO_V2_FRONTEND", script: "test-echo", vars: { BACKEND: "echo-v2" } }],
  },
  extraWorkers: [{ name: "load-client", script: "test-load-client", serviceBindings: { SIDECAR: sidecarName("echo") } }],
};

/** What the manifests lack: the endpoints, labelled like the pods the Services select. */
const BASE = {
  mesh: MESH,
  services: {
    echo: {
      snapshotTtlMs: 100,
      endpoints: [
        { id: "echo-v1", binding: "ECHO_V1", labels: { app: "echo", version: "v1" } },
        { id: "echo-v2", binding: "ECHO_V2", labels: { app: "echo", version: "v2" } },
      ],
    },
    "echo-v2": {
      snapshotTtlMs: 100,
      endpoints: [{ id: "echo-v2-frontend", binding: "ECHO_V2_FRONTEND", labels: { app: "echo", version: "v2" } }],
    },
  },
};

// The only things these manifests may lose in translation: ports and namespaces (one HTTP entry
// per service, one namespace per mesh), and Services no backendRef names.
const EXPECTED_LOSSES = /ports do not apply|one namespace per mesh|nothing named this one/;

let mesh: RunningMesh;
const sidecars = new Map<string, { fetch(url: string, init?: RequestInit): Promise<Response> }>();

const manifest = (file: string) => readFile(new URL(`./manifests/${file}`, import.meta.url), "utf8");

async function call(service: string, path: string, init: RequestInit = {}): Promise<Response> {
  return sidecars.get(service)!.fetch(`http://${service}${path}`, { redirect: "manual", ...init });
}

async function servedGeneration(service: string): Promise<number> {
  // Any request lets a sidecar revalidate its snapshot in the background; the status says which it serves.
  await (await call(service, "/__conformance/warm-up")).arrayBuffer();
  const status = (await mesh.sidecarView(service, "status")) as { snapshot: { generation: number } | null };
  return status.snapshot?.generation ?? 0;
}

/** Resets to the base policy, imports and applies the case's manifest, and waits until every sidecar serves it. */
async function applyCase(c: ConformanceCase): Promise<void> {
  const reset = await mesh.applyPolicy(BASE);
  expect(reset.status).toBe(201);
  const body = [await manifest("services.yaml"), await manifest(c.manifest)].join("\n---\n");
  const res = await mesh.admin("/v1/import?apply=true", { method: "POST", headers: { "content-type": "application/yaml" }, body });
  const answer = (await res.json()) as { errors: unknown[]; ignored: { path: string; reason: string }[]; applied?: { version: number } };
  expect(answer.errors).toEqual([]);
  expect(res.status).toBe(201);
  for (const f of answer.ignored) expect(`${f.path}: ${f.reason}`).toMatch(EXPECTED_LOSSES);
  const version = answer.applied!.version;
  // Generations are per service (a service the change left alone keeps its snapshot): wait until
  // each sidecar serves the snapshot the control plane has for its service now.
  for (const service of sidecars.keys()) {
    const current = ((await (await mesh.admin(`/v1/snapshot/${service}`)).json()) as { generation: number }).generation;
    for (let i = 0; (await servedGeneration(service)) < current; i++) {
      if (i > 100) throw new Error(`sidecar of ${service} did not serve its snapshot of policy version ${version} (generation ${current})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const sansSpaces = (value: string | null | undefined) => value?.split(/,\s*/).join(",");

async function check(e: Expectation): Promise<void> {
  const res = await call(e.service ?? "echo", e.path, { method: e.method ?? "GET", headers: { ...e.headers, ...(await mesh.debugHeaders()) } });
  const status = e.status ?? (e.location ? 302 : 200);
  const text = await res.text();
  expect(res.status, text).toBe(status);
  if (status === 404) expect(res.headers.get("x-edgemesh-no-route")).toBe("no-route-matched");
  if (e.location !== undefined) expect(res.headers.get("location")).toBe(e.location);
  if (e.route !== undefined) expect(res.headers.get("x-edgemesh-route")).toBe(e.route);
  for (const [name, value] of Object.entries(e.response?.headers ?? {})) expect(res.headers.get(name), name).toBe(value);
  for (const name of e.response?.absent ?? []) expect(res.headers.has(name), name).toBe(false);
  if (e.backend === undefined && e.upstream === undefined) return;
  const received = JSON.parse(text) as { backend: string; path: string; host: string; headers: Record<string, string> };
  if (e.backend !== undefined) expect(received.backend).toBe(e.backend);
  if (e.upstream?.path !== undefined) expect(received.path).toBe(e.upstream.path);
  if (e.upstream?.host !== undefined) expect(received.host).toBe(e.upstream.host);
  for (const [name, value] of Object.entries(e.upstream?.headers ?? {})) expect(sansSpaces(received.headers[name.toLowerCase()]), name).toBe(value);
  for (const name of e.upstream?.absent ?? []) expect(received.headers, name).not.toHaveProperty(name.toLowerCase());
}

beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY });
  for (const service of Object.keys(TOPOLOGY.services)) sidecars.set(service, (await mesh.mf.getWorker(sidecarName(service))) as never);
});

afterAll(() => mesh?.dispose());

for (const c of CASES) {
  describe(c.name, () => {
    beforeAll(() => applyCase(c));

    it.each(c.expectations.map((e) => [`${e.method ?? "GET"} ${e.service ?? "echo"}${e.path}${e.headers ? ` ${JSON.stringify(e.headers)}` : ""}`, e] as const))("%s", async (_, e) => {
      await check(e);
    });

    if (c.weights) {
      const { path, requests, tolerance, batches, expected } = c.weights;
      it(`splits ${requests} requests by weight within ±${tolerance * 100} points`, async () => {
        const client = await mesh.mf.getWorker("load-client");
        const q = new URLSearchParams({ requests: String(requests), concurrency: "16", path, tally: "x-echo-backend" });
        const misses: string[] = [];
        for (let batch = 0; batch < batches; batch++) {
          const result = (await (await client.fetch(`http://client/run?${q}`)).json()) as { statuses: Record<string, number>; tally: Record<string, number> };
          expect(result.statuses).toEqual({ 200: requests });
          const off = Object.entries(expected).filter(([backend, share]) => Math.abs((result.tally[backend] ?? 0) / requests - share) > tolerance);
          if (off.length === 0) return;
          misses.push(JSON.stringify(result.tally));
        }
        expect.fail(`no batch of ${requests} split within ±${tolerance * 100} points of ${JSON.stringify(expected)}: ${misses.join(", ")}`);
      });
    }
  });
}
