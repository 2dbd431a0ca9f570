// A small mesh for resilience tests: service "api" with misbehaving instances (test/workers/flaky.ts)
// and a load client inside workerd bound to api's sidecar.
import { afterAll, beforeAll, beforeEach } from "vitest";
import { instanceName, sidecarName, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";

export const MESH = "resil";

export interface ResilienceMesh {
  mesh: RunningMesh;
  /** Calls api's sidecar from Node (slow-ish: use for single requests). */
  call(path: string, init?: RequestInit): Promise<Response>;
  /** Drives load from inside workerd. */
  load(opts: LoadOptions): Promise<LoadResult>;
  /** Applies a policy whose only service is api, and waits until the sidecar serves it. */
  apply(api: Record<string, unknown>): Promise<number>;
  configure(id: string, behaviour: Record<string, unknown>): Promise<void>;
  stats(id: string): Promise<{ hits: number; shadowHits: number; bodies: number }>;
  resetStats(): Promise<void>;
  debug(path: string): Promise<any>;
  dispose(): Promise<void>;
}

export interface LoadOptions {
  requests: number;
  concurrency?: number;
  path?: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  tally?: string;
}

export interface LoadResult {
  statuses: Record<string, number>;
  tally: Record<string, number>;
  wallMs: number;
  latenciesMs: number[];
}

export const instanceIds = (count: number) => Array.from({ length: count }, (_, i) => `api-${String.fromCharCode(97 + i)}`);
export const bindingOf = (id: string) => id.toUpperCase().replace(/-/g, "_");

/** Endpoints for the policy, with the given labels per instance id. */
export function endpointsOf(ids: string[], labels: (id: string) => Record<string, string> = () => ({})) {
  return ids.map((id) => ({ id, binding: bindingOf(id), labels: labels(id) }));
}

export interface ResilienceMeshOptions {
  /** Extra (or overriding) vars for api's sidecar. */
  sidecarVars?: Record<string, string>;
  /** Workers to give a socket of their own (see RunningMesh.directUrl). */
  exposeWorkers?: string[];
}

/**
 * The hooks every resilience test file needs: one mesh for the file (handed to `onStarted`),
 * disposed after it, and every upstream reset to well-behaved before each test.
 */
export function useResilienceMesh(ids: string[], onStarted: (m: ResilienceMesh) => void | Promise<void>, opts: ResilienceMeshOptions = {}): void {
  let started: ResilienceMesh | undefined;
  beforeAll(async () => {
    started = await startResilienceMesh(ids, opts);
    await onStarted(started);
  });
  afterAll(() => started?.dispose());
  beforeEach(async () => {
    for (const id of ids) await started!.configure(id, {});
  });
}

export async function startResilienceMesh(ids: string[], opts: ResilienceMeshOptions = {}): Promise<ResilienceMesh> {
  const topology: Topology = {
    mesh: MESH,
    services: { api: ids.map((id) => ({ id, binding: bindingOf(id), script: "test-flaky" })) },
    extraWorkers: [{ name: "load-client", script: "test-load-client", serviceBindings: { SIDECAR: sidecarName("api") } }],
  };
  const mesh = await startMesh({ topology, sidecarVars: { SNAPSHOT_TTL_MS: "100", ...opts.sidecarVars }, ...(opts.exposeWorkers ? { exposeWorkers: opts.exposeWorkers } : {}) });
  const sidecar = await mesh.mf.getWorker(sidecarName("api"));
  const client = await mesh.mf.getWorker("load-client");
  const instances = new Map<string, Awaited<ReturnType<typeof mesh.mf.getWorker>>>();
  for (const id of ids) instances.set(id, await mesh.mf.getWorker(instanceName(MESH, id)));
  const call = (path: string, init?: RequestInit) => sidecar.fetch(`http://mesh.test${path}`, init as never) as unknown as Promise<Response>;
  const self: ResilienceMesh = {
    mesh,
    call,
    async load(opts) {
      const q = new URLSearchParams({ requests: String(opts.requests), concurrency: String(opts.concurrency ?? 8), path: opts.path ?? "/", method: opts.method ?? "GET", tally: opts.tally ?? "x-flaky-endpoint" });
      if (opts.body !== undefined) q.set("body", opts.body);
      for (const [k, v] of Object.entries(opts.headers ?? {})) q.set(`h-${k}`, v);
      const res = await client.fetch(`http://client/run?${q}`);
      if (!res.ok) throw new Error(`load client: ${res.status} ${await res.text()}`);
      return (await res.json()) as LoadResult;
    },
    async apply(api) {
      const res = await mesh.applyPolicy({ mesh: MESH, services: { api } });
      const body = (await res.json()) as { version?: number; errors?: unknown };
      if (res.status !== 201) throw new Error(`policy rejected: ${JSON.stringify(body)}`);
      const version = body.version!;
      for (let i = 0; i < 100; i++) {
        const r = await call("/__warmup", { headers: { "x-edgemesh-debug": "1" } });
        await r.arrayBuffer();
        if (r.headers.get("x-edgemesh-snapshot-version") === String(version)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return version;
    },
    async configure(id, behaviour) {
      const res = await instances.get(id)!.fetch("http://flaky/__flaky/config", { method: "POST", body: JSON.stringify(behaviour) });
      await res.arrayBuffer();
    },
    async stats(id) {
      return (await (await instances.get(id)!.fetch("http://flaky/__flaky/stats")).json()) as never;
    },
    async resetStats() {
      for (const worker of instances.values()) await (await worker.fetch("http://flaky/__flaky/reset", { method: "POST" })).arrayBuffer();
    },
    async debug(path) {
      return (await call(`/__edgemesh/${path}`, { headers: { authorization: `Bearer ${mesh.adminToken}` } })).json();
    },
    dispose: () => mesh.dispose(),
  };
  return self;
}

export { percentile } from "../../scripts/bench/stats.ts";
