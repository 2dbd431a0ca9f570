// A small mesh for resilience tests: service "api" with misbehaving instances (test/workers/flaky.ts)
// and a load client inside workerd bound to api's sidecar.
import type { SidecarDebugView } from "../../policies/sidecar-control.ts";
import { afterAll, beforeAll, beforeEach, expect } from "vitest";
import { instanceName, sidecarName, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";

export const MESH = "resil";

export interface ResilienceMesh {
  mesh: RunningMesh;
  /** Calls api's sidecar from Node (slow-ish: use for single requests). */
  call(path: string, init?: RequestInit): Promise<Response>;
  /** Drives load from inside workerd. */
  load(opts: LoadOptions): Promise<LoadResult>;
  /** Applies a policy whose only service is api, waits until the sidecar serves it, then clears the instances' counters. */
  apply(api: Record<string, unknown>): Promise<number>;
  configure(id: string, behaviour: Record<string, unknown>): Promise<void>;
  stats(id: string): Promise<{ hits: number; shadowHits: number; bodies: number; lastHeaders: string[] }>;
  resetStats(): Promise<void>;
  /** One debug view of the api sidecar (status, outliers, resilience, …), through the admin API. */
  debug(view: string): Promise<any>;
  /** Headers that get a request the sidecar's debug headers (they need a debug credential). */
  debugHeaders: Record<string, string>;
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

// The sidecar keeps per-endpoint state for its isolate's life (latency estimates, ejections,
// tries in flight), keyed by endpoint id. So that no test inherits another's, every test names the
// same instances with endpoint ids of its own: "t7-api-a" reaches the Worker api-a in test 7.
let testNumber = 0;

/** The endpoint id of instance `id` (e.g. "api-a") in the running test. */
export const epId = (id: string) => `t${testNumber}-${id}`;

/** Endpoints for the policy (ids of the running test), with the given labels per instance id. */
export function endpointsOf(ids: string[], labels: (id: string) => Record<string, string> = () => ({})) {
  return ids.map((id) => ({ id: epId(id), binding: bindingOf(id), labels: labels(id) }));
}

export interface ResilienceMeshOptions {
  /** Extra (or overriding) vars for api's sidecar. */
  sidecarVars?: Record<string, string>;
  /** Workers to give a socket of their own (see RunningMesh.directUrl). */
  exposeWorkers?: string[];
}

/**
 * The hooks every resilience test file needs: one mesh for the file (handed to `onStarted`),
 * disposed after it, and before each test every upstream reset to well-behaved, its counters
 * cleared, and fresh endpoint ids (epId).
 */
export function useResilienceMesh(ids: string[], onStarted: (m: ResilienceMesh) => void | Promise<void>, opts: ResilienceMeshOptions = {}): void {
  let started: ResilienceMesh | undefined;
  beforeAll(async () => {
    started = await startResilienceMesh(ids, opts);
    await onStarted(started);
  });
  afterAll(() => started?.dispose());
  beforeEach(async () => {
    testNumber++;
    for (const id of ids) await started!.configure(id, {});
    await started!.resetStats();
  });
}

/**
 * useResilienceMesh with api's sidecar on a socket of its own, for clients that speak raw HTTP/1.1
 * (and misbehave, or go away): `onStarted` gets the mesh and the socket's URL.
 */
export function useResilienceMeshOnSocket(ids: string[], onStarted: (m: ResilienceMesh, sidecarUrl: URL) => void): void {
  useResilienceMesh(ids, async (started) => onStarted(started, await started.mesh.directUrl(sidecarName("api"))), { exposeWorkers: [sidecarName("api")] });
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
        const r = await call("/__warmup", { headers: self.debugHeaders });
        await r.arrayBuffer();
        if (r.headers.get("x-edgemesh-snapshot-version") === String(version)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // The warm-up requests reached the instances: counting starts after them.
      await self.resetStats();
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
    async debug(view) {
      return mesh.sidecarView("api", view as SidecarDebugView);
    },
    debugHeaders: await mesh.debugHeaders(),
    dispose: () => mesh.dispose(),
  };
  return self;
}

/** Reads until `done` holds (background work caught up), at most `timeoutMs`; answers the last read. */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= until) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits, at most `timeoutMs`, until api's sidecar holds no breaker slot, waiter or try in flight
 * (background work and deadlines caught up), then checks that it is so. Answers the resilience view.
 */
export async function expectNothingHeld(m: ResilienceMesh, timeoutMs = 5000): Promise<any> {
  const idle = (r: any) => r.breaker.active === 0 && r.breaker.pending === 0 && Object.values(r.endpointLoads).every((l: any) => l.outstanding === 0);
  const r = await eventually(() => m.debug("resilience"), idle, timeoutMs);
  expect({ active: r.breaker.active, pending: r.breaker.pending }).toEqual({ active: 0, pending: 0 });
  for (const [id, load] of Object.entries(r.endpointLoads)) expect([id, (load as any).outstanding]).toEqual([id, 0]);
  return r;
}

/** Reads until two reads `quietMs` apart agree (background work finished), at most `timeoutMs`. */
export async function settled<T>(read: () => Promise<T>, quietMs = 300, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last = await read();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    const next = await read();
    if (JSON.stringify(next) === JSON.stringify(last) || Date.now() >= until) return next;
    last = next;
  }
}

export { percentile } from "../../scripts/bench/stats.ts";
