// A small mesh for rollout tests: service "api" with a stable and a canary instance (both
// test/workers/flaky.ts, so a test can make the canary fail a share of its requests), and a load
// client inside workerd that the tests use to send traffic through api's sidecar. Each test starts
// its own mesh, so no rollout, policy version or telemetry row of another test is in sight.
import { instanceName, sidecarName, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";
import { adminJson } from "../control-helpers.ts";

export const MESH = "roll";
export const SERVICE = "api";

export const TOPOLOGY: Topology = {
  mesh: MESH,
  services: {
    [SERVICE]: [
      { id: "api-stable", binding: "API_STABLE", script: "test-flaky" },
      { id: "api-canary", binding: "API_CANARY", script: "test-flaky" },
    ],
  },
  extraWorkers: [{ name: "traffic", script: "test-load-client", serviceBindings: { SIDECAR: { name: sidecarName(SERVICE), props: { caller: "traffic" } } } }],
};

/** The service with a rollout from "stable" to "canary" on route "main"; `rollout` overrides its knobs. */
export function apiService(rollout: Record<string, unknown> | null, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endpoints: [
      { id: "api-stable", binding: "API_STABLE", labels: { version: "v1" } },
      { id: "api-canary", binding: "API_CANARY", labels: { version: "v2" } },
    ],
    subsets: { stable: { version: "v1" }, canary: { version: "v2" } },
    routes: [{ name: "main", to: [{ subset: "stable", weight: 100 }, { subset: "canary", weight: 0 }] }],
    // A canary failing a share of requests must be judged by the rollout, not ejected by the sidecar.
    outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 },
    ...(rollout ? { rollout: { stable: "stable", canary: "canary", routes: ["main"], ...rollout } } : {}),
    ...extra,
  };
}

export const document = (api: Record<string, unknown>) => ({ mesh: MESH, services: { [SERVICE]: api } });

export interface TrafficTally {
  statuses: Record<string, number>;
  /** Requests per answering instance (x-flaky-endpoint). */
  endpoints: Record<string, number>;
}

export interface RolloutMesh {
  mesh: RunningMesh;
  apply(doc: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Sends `ratePerSecond` requests a second until stop() (from inside workerd, open loop). */
  traffic(ratePerSecond: number, headers?: Record<string, string>): { stop(): Promise<TrafficTally> };
  /** Sends `requests` requests now and tallies them. */
  burst(requests: number, headers?: Record<string, string>): Promise<TrafficTally>;
  configure(instance: "api-stable" | "api-canary", behaviour: Record<string, unknown>): Promise<void>;
  rollout(): Promise<any>;
  /** An action on the rollout, sent with the bootstrap token or as the admin token named `asToken` (made on first use, scope write). */
  act(action: string, asToken?: string): Promise<{ status: number; body: any }>;
  events(types: string): Promise<any[]>;
  history(): Promise<any[]>;
  dispose(): Promise<void>;
}

export async function startRolloutMesh(): Promise<RolloutMesh> {
  // Snapshots revalidate every 100 ms and telemetry flushes every 200 ms: steps reach the sidecar
  // and the canary's requests reach the store well within a check's metricsDelayMs.
  const mesh = await startMesh({ topology: TOPOLOGY, sidecarVars: { SNAPSHOT_TTL_MS: "100", TELEMETRY_FLUSH_MS: "200" } });
  /** Admin tokens made by act(), by name: who acts is the token, never a header. */
  const tokens: Record<string, string> = {};
  const client = await mesh.mf.getWorker("traffic");
  const instances = {
    "api-stable": await mesh.mf.getWorker(instanceName(MESH, "api-stable")),
    "api-canary": await mesh.mf.getWorker(instanceName(MESH, "api-canary")),
  };
  const run = async (requests: number, rate: number, headers: Record<string, string>): Promise<TrafficTally> => {
    const q = new URLSearchParams({ requests: String(requests), concurrency: "16", tally: "x-flaky-endpoint" });
    if (rate > 0) q.set("rate", String(rate));
    for (const [k, v] of Object.entries(headers)) q.set(`h-${k}`, v);
    const res = await client.fetch(`http://traffic/run?${q}`);
    if (!res.ok) throw new Error(`load client: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { statuses: Record<string, number>; tally: Record<string, number> };
    return { statuses: body.statuses, endpoints: body.tally };
  };
  const add = (into: TrafficTally, from: TrafficTally) => {
    for (const [k, v] of Object.entries(from.statuses)) into.statuses[k] = (into.statuses[k] ?? 0) + v;
    for (const [k, v] of Object.entries(from.endpoints)) into.endpoints[k] = (into.endpoints[k] ?? 0) + v;
  };
  return {
    mesh,
    async apply(doc, headers = {}) {
      const res = await mesh.admin("/v1/policy", { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(doc) });
      return { status: res.status, body: await res.json() };
    },
    traffic(ratePerSecond, headers = {}) {
      let stopped = false;
      const total: TrafficTally = { statuses: {}, endpoints: {} };
      // Half-second rounds, so stop() returns soon after it is called.
      const loop = (async () => {
        while (!stopped) add(total, await run(Math.max(1, Math.round(ratePerSecond / 2)), ratePerSecond, headers));
      })();
      return {
        async stop() {
          stopped = true;
          await loop;
          return total;
        },
      };
    },
    burst: (requests, headers = {}) => run(requests, 0, headers),
    async configure(instance, behaviour) {
      await (await instances[instance].fetch("http://flaky/__flaky/config", { method: "POST", body: JSON.stringify(behaviour) })).arrayBuffer();
    },
    rollout: async () => (await adminJson(mesh, `/v1/rollouts/${SERVICE}`)).body,
    async act(action, asToken) {
      if (asToken === undefined) return adminJson(mesh, `/v1/rollouts/${SERVICE}/${action}`, { method: "POST" });
      tokens[asToken] ??= (await adminJson(mesh, "/v1/tokens", { method: "POST", json: { name: asToken, scope: "write" } })).body.token as string;
      const res = await fetch(new URL(`/v1/rollouts/${SERVICE}/${action}`, mesh.controlUrl), { method: "POST", headers: { authorization: `Bearer ${tokens[asToken]}` } });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    events: async (types) => (await adminJson(mesh, `/v1/events?types=${types}&limit=1000`)).body.events,
    history: async () => (await adminJson(mesh, "/v1/policy/history?limit=100")).body.versions,
    dispose: () => mesh.dispose(),
  };
}
