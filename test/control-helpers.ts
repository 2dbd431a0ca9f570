// Helpers for the control-plane integration tests: admin calls as JSON and the watch stream.
import { CONTROL_WORKER, type InstanceSpec, type RunningMesh, type Topology } from "../scripts/mesh.ts";

/**
 * A mesh of health-target Workers (test/workers/health-target.ts), `count` instances a service,
 * named and bound by number: { web: 2 } is web-1 on binding WEB_1 and web-2 on WEB_2.
 */
export function healthTargetTopology(mesh: string, counts: Record<string, number>): Topology {
  const instances = (service: string, count: number): InstanceSpec[] =>
    Array.from({ length: count }, (_, i) => ({ id: `${service}-${i + 1}`, binding: `${service.toUpperCase()}_${i + 1}`, script: "test-health-target" }));
  return { mesh, services: Object.fromEntries(Object.entries(counts).map(([service, count]) => [service, instances(service, count)])) };
}

export async function adminJson(mesh: RunningMesh, path: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: any }> {
  const { json, ...rest } = init;
  const res = await mesh.admin(path, json === undefined ? rest : { ...rest, headers: { "content-type": "application/json" }, body: JSON.stringify(json) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export interface Watch {
  messages: any[];
  /** Resolves once `predicate` holds for the messages received so far. */
  until(predicate: (messages: any[]) => boolean, timeoutMs?: number): Promise<any[]>;
  close(): void;
}

/** Opens the watch stream (optionally from a sequence) over the real admin route. */
export async function openWatch(mesh: RunningMesh, query = ""): Promise<Watch> {
  const control = await mesh.mf.getWorker(CONTROL_WORKER);
  const res = (await control.fetch(`http://control.test/v1/watch${query}`, {
    headers: { upgrade: "websocket", authorization: `Bearer ${mesh.adminToken}` },
  })) as unknown as Response & { webSocket: WebSocket | null };
  if (res.status !== 101 || !res.webSocket) throw new Error(`watch refused: ${res.status} ${await res.text()}`);
  const ws = res.webSocket as WebSocket & { accept(): void };
  const messages: any[] = [];
  const waiters = new Set<() => void>();
  ws.addEventListener("message", (e: MessageEvent) => {
    messages.push(JSON.parse(String(e.data)));
    for (const w of waiters) w();
  });
  ws.accept();
  return {
    messages,
    until(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(messages)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(messages);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`watch: condition not met within ${timeoutMs} ms; got ${JSON.stringify(messages.map((m) => m.type ?? m))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => ws.close(1000, "done"),
  };
}

/** Polls `read` until `predicate` holds, or throws with the last value after `timeoutMs`. */
export async function eventually<T>(read: () => Promise<T>, predicate: (value: T) => boolean, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await read();
  while (!predicate(last)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await read();
  }
  return last;
}

/** A component of MeshControl inside the harness Durable Object (test/workers/control-harness.ts). */
export interface Harness {
  setup(options?: { healthHistoryLimit?: number; eventLogLimit?: number }): Promise<void>;
  restart(): Promise<void>;
  invoke(component: string, method: string, args?: unknown[]): Promise<any>;
  invokeInTransaction(component: string, method: string, args?: unknown[]): Promise<any>;
  activate(version: number, document: unknown): Promise<{ ok: boolean; errors?: unknown }>;
  exclude(ids: string[]): Promise<void>;
  rowsRead(): Promise<number>;
  takeEmitted(): Promise<any[]>;
  alarmAt(): Promise<number | null>;
  planAlarm(dues: (number | null)[], replace: boolean): Promise<number | null>;
  sql(query: string, ...bindings: unknown[]): Promise<any[]>;
}

/**
 * Runs the component harness in its own Miniflare. `fresh()` gives a new object, with empty
 * storage, for every test.
 */
export async function startHarness(): Promise<{ fresh(): Promise<Harness>; dispose(): Promise<void> }> {
  const { Miniflare, Log, LogLevel } = await import("miniflare");
  const { buildWorkers } = await import("../scripts/build.ts");
  const { COMPATIBILITY_DATE, scriptOf } = await import("../scripts/mesh.ts");
  await buildWorkers(["test-control-harness"]);
  const mf = new Miniflare({
    log: new Log(LogLevel.WARN),
    ...(await scriptOf("test-control-harness")),
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: { HARNESS: { className: "ControlHarness", useSQLite: true } },
  });
  await mf.ready;
  const ns = await mf.getDurableObjectNamespace("HARNESS");
  return {
    async fresh() {
      const stub = ns.get(ns.idFromName(crypto.randomUUID())) as unknown as Harness;
      await stub.setup();
      return stub;
    },
    dispose: () => mf.dispose(),
  };
}

/** A sidecar's debug status (its SidecarControl entrypoint, through the admin API). */
export async function sidecarStatus(mesh: RunningMesh, service: string): Promise<any> {
  return mesh.sidecarView(service, "status");
}

/**
 * Waits until the service's sidecar serves the snapshot the control plane has for it now (same
 * generation), sending a request now and then so that it revalidates. Replaces fixed sleeps: it
 * takes as long as the machine needs, and no longer.
 */
export async function untilSidecarCurrent(mesh: RunningMesh, service: string, timeoutMs = 15_000): Promise<any> {
  const { sidecarName } = await import("../scripts/mesh.ts");
  const worker = await mesh.mf.getWorker(sidecarName(service));
  const target = (await adminJson(mesh, `/v1/snapshot/${service}`)).body.generation as number;
  return eventually(async () => {
    await (await worker.fetch("http://mesh.test/__edgemesh-nudge")).arrayBuffer();
    return sidecarStatus(mesh, service);
  }, (s) => (s.snapshot?.generation ?? 0) >= target, timeoutMs, 50);
}
