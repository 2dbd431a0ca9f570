// Builds and runs a whole mesh in one Miniflare instance: the control Worker with its Durable
// Object, one sidecar per service and the services' own Workers. `npm start`, the integration
// tests and the benchmarks all run the mesh through here.
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { buildWorkers, distPath, ROOT } from "./build.ts";
import { generateMeshKey, type MeshKeySet } from "../auth/mesh-token.ts";
import { SIDECAR_CONTROL_ENTRYPOINT, sidecarBindingName } from "../durable/bindings.ts";
import { compilePolicy } from "../policies/compile.ts";
import { sharedLimitBindings } from "../policies/ratelimit.ts";
import { validatePolicy } from "../policies/schema.ts";
import type { SidecarDebugView } from "../policies/sidecar-control.ts";

export const COMPATIBILITY_DATE = "2026-04-01";
export const DEFAULT_ADMIN_TOKEN = "edgemesh-local-admin-token";
export const CONTROL_WORKER = "edgemesh-control";

/** One instance of a service: a Worker of this mesh, reached by its sidecar over `binding`. */
export interface InstanceSpec {
  id: string;
  binding: string;
  /** Worker name in dist/ (see WORKER_ENTRIES). */
  script: string;
  vars?: Record<string, string>;
  /** Binding name -> service whose sidecar it reaches, for calls to other services. */
  calls?: Record<string, string>;
}

export interface Topology {
  mesh: string;
  /** Service name -> its instances. The first service is the entry served on the main port. */
  services: Record<string, InstanceSpec[]>;
  /** Extra Workers (test clients, benchmarks) that call sidecars or instances directly. */
  extraWorkers?: {
    name: string;
    script: string;
    vars?: Record<string, string>;
    serviceBindings: NonNullable<WorkerOptions["serviceBindings"]>;
    /** Further Miniflare options of this Worker: Durable Objects, Analytics Engine datasets, … */
    options?: Partial<WorkerOptions>;
  }[];
}

export const BOOKINFO: Topology = {
  mesh: "bookinfo",
  services: {
    productpage: [
      { id: "productpage-v1", binding: "PRODUCTPAGE_V1", script: "bookinfo-productpage", vars: { VERSION: "v1" }, calls: { DETAILS: "details", REVIEWS: "reviews" } },
    ],
    details: [{ id: "details-v1", binding: "DETAILS_V1", script: "bookinfo-details", vars: { VERSION: "v1" } }],
    reviews: [
      { id: "reviews-v1", binding: "REVIEWS_V1", script: "bookinfo-reviews", vars: { VERSION: "v1" }, calls: { RATINGS: "ratings" } },
      { id: "reviews-v2", binding: "REVIEWS_V2", script: "bookinfo-reviews", vars: { VERSION: "v2" }, calls: { RATINGS: "ratings" } },
      { id: "reviews-v3", binding: "REVIEWS_V3", script: "bookinfo-reviews", vars: { VERSION: "v3" }, calls: { RATINGS: "ratings" } },
    ],
    ratings: [{ id: "ratings-v1", binding: "RATINGS_V1", script: "bookinfo-ratings", vars: { VERSION: "v1" } }],
  },
};

/**
 * The example gRPC service (examples/grpc/): two versions for a canary, reached through its own
 * sidecar like every service. Part of the example mesh `npm start` runs (EXAMPLE_MESH), with its
 * policy in policies/greeter.json.
 */
export const GREETER_SERVICES: Record<string, InstanceSpec[]> = {
  greeter: [
    { id: "greeter-v1", binding: "GREETER_V1", script: "grpc-greeter", vars: { VERSION: "v1" } },
    { id: "greeter-v2", binding: "GREETER_V2", script: "grpc-greeter", vars: { VERSION: "v2" } },
  ],
};

/** What `npm start` runs: bookinfo and the greeter, one mesh. */
export const EXAMPLE_MESH: Topology = { mesh: BOOKINFO.mesh, services: { ...BOOKINFO.services, ...GREETER_SERVICES } };

export const sidecarName = (service: string) => `edgemesh-sidecar-${service}`;
export const instanceName = (mesh: string, id: string) => `${mesh}-${id}`;

export interface MeshOptions {
  topology: Topology;
  /** Port for the entry service's sidecar; 0 picks a free one. */
  port?: number;
  /** Port for the control plane; 0 picks a free one. */
  controlPort?: number;
  host?: string;
  adminToken?: string;
  /** Folder for Durable Object and cache state; omit for in-memory state. */
  persistRoot?: string;
  /** Control Worker env overrides (tests), e.g. EDGEMESH_HEALTH_HISTORY_LIMIT. */
  controlVars?: Record<string, string>;
  /** Sidecar env overrides, e.g. SNAPSHOT_TTL_MS. */
  sidecarVars?: Record<string, string>;
  /**
   * The Durable Object the sidecars' telemetry goes to (TELEMETRY_STORE); default the control
   * Worker's TelemetryStore. false: no telemetry sink. Tests point it at misbehaving stores.
   */
  sidecarTelemetryStore?: { className: string; scriptName: string } | false;
  /** Workers to expose on a socket of their own (free port); see `RunningMesh.directUrl`. */
  exposeWorkers?: string[];
  /** Fixed ports for some of `exposeWorkers` (worker name -> port); the others get a free one. */
  exposedPorts?: Record<string, number>;
  /**
   * Run the distribution tier (MeshRelay objects between MeshControl and the sidecars, answers
   * shared per colo through the Cache API), as a deployment does. Default true; false makes the
   * sidecars check in with MeshControl directly.
   */
  relays?: boolean;
  /**
   * Run health checks through the control Worker's HealthProbe entrypoint (default true), as a
   * deployment does; false makes MeshControl check endpoints itself, 6 at a time.
   */
  healthProbe?: boolean;
  /**
   * The mesh token key set of the control Worker and the sidecars (EDGEMESH_TOKEN_KEYS). Default:
   * a new Ed25519 key per mesh, made here (no network) and never printed. `sidecarVars` may give
   * the sidecars another one (key rotation tests).
   */
  tokenKeys?: MeshKeySet;
  /**
   * The policy the mesh will run, for what its Workers need bound: a `ratelimits` binding on a
   * sidecar for each shared rate limit of its service (Miniflare simulates Cloudflare's).
   */
  policy?: unknown;
  verbose?: boolean;
}

/** A key set for one local mesh: one signing key, private part included (control and sidecars sign). */
export async function localTokenKeys(): Promise<MeshKeySet> {
  return { keys: [await generateMeshKey({ status: "signing" })] };
}

/** Service -> its sidecar's `ratelimits` bindings, for the shared limits of a (valid) policy. */
function rateLimitBindingsOf(policy: unknown): Record<string, Record<string, { simple: { limit: number; period: 10 | 60 } }>> {
  if (policy === undefined) return {};
  const checked = validatePolicy(policy);
  // An invalid document binds nothing; applying it reports why.
  if (!checked.ok) return {};
  const out: Record<string, Record<string, { simple: { limit: number; period: 10 | 60 } }>> = {};
  for (const [service, snapshot] of Object.entries(compilePolicy(checked.document).services)) {
    const bindings = sharedLimitBindings(snapshot.rateLimits);
    if (Object.keys(bindings).length > 0) out[service] = Object.fromEntries(Object.entries(bindings).map(([name, simple]) => [name, { simple }]));
  }
  return out;
}

/** request.cf of every local request: fixed, because without one Miniflare fetches it from the internet. */
export const FIXED_CF = { colo: "LCL", country: "ZZ", city: "Localhost", asn: 0, httpProtocol: "HTTP/1.1", tlsVersion: "", clientTcpRtt: 0 };

/** A bundled Worker (one ES module file) as Miniflare's module options. */
export async function moduleOptions(file: string): Promise<Pick<WorkerOptions, "modules" | "modulesRoot">> {
  return { modulesRoot: path.dirname(file), modules: [{ type: "ESModule", path: file, contents: await readFile(file, "utf8") }] };
}

/** A Worker built into dist/ (WORKER_ENTRIES), as Miniflare's module options. */
export function scriptOf(script: string): Promise<Pick<WorkerOptions, "modules" | "modulesRoot">> {
  return moduleOptions(distPath(script));
}

export async function meshWorkers(opts: MeshOptions): Promise<WorkerOptions[]> {
  const { topology } = opts;
  const token = opts.adminToken ?? DEFAULT_ADMIN_TOKEN;
  const tokenKeys = JSON.stringify(opts.tokenKeys ?? (await localTokenKeys()));
  const rateLimits = rateLimitBindingsOf(opts.policy);
  const control: WorkerOptions = {
    name: CONTROL_WORKER,
    ...(await scriptOf("control")),
    compatibilityDate: COMPATIBILITY_DATE,
    // EDGEMESH_CONTROL_FAULTS enables the control plane's fault switch: local meshes only.
    bindings: { MESH_NAME: topology.mesh, EDGEMESH_ADMIN_TOKEN: token, EDGEMESH_TOKEN_KEYS: tokenKeys, EDGEMESH_CONTROL_FAULTS: "true", ...opts.controlVars },
    durableObjects: {
      MESH_CONTROL: { className: "MeshControl", useSQLite: true },
      MESH_RELAY: { className: "MeshRelay", useSQLite: true },
      TELEMETRY_STORE: { className: "TelemetryStore", useSQLite: true },
    },
    // The control plane reaches each sidecar on its SidecarControl entrypoint (health checks of
    // binding endpoints, debug views), and runs its checks in batches through its own HealthProbe.
    serviceBindings: {
      ...Object.fromEntries(Object.keys(topology.services).map((s) => [sidecarBindingName(s), { name: sidecarName(s), entrypoint: SIDECAR_CONTROL_ENTRYPOINT }])),
      ...(opts.healthProbe === false ? {} : { HEALTH_PROBE: { name: CONTROL_WORKER, entrypoint: "HealthProbe" } }),
    },
    unsafeDirectSockets: [{ host: opts.host ?? "127.0.0.1", port: opts.controlPort ?? 0 }],
  };
  const sidecarScript = await scriptOf("sidecar");
  // Analytics Engine stores nothing locally, so sidecars send telemetry to the store instead.
  const telemetryStore = opts.sidecarTelemetryStore ?? { className: "TelemetryStore", scriptName: CONTROL_WORKER };
  const sidecars: WorkerOptions[] = Object.entries(topology.services).map(([service, instances]) => ({
    name: sidecarName(service),
    ...sidecarScript,
    compatibilityDate: COMPATIBILITY_DATE,
    // request.signal tells the sidecar when a client disconnects (workerd then drops its continuations).
    compatibilityFlags: ["enable_request_signal"],
    // No admin credential: the sidecar cannot change policy. Its key set verifies inbound mesh
    // tokens and debug credentials and signs the tokens it attaches for URL endpoints.
    bindings: { SERVICE_NAME: service, MESH_NAME: topology.mesh, EDGEMESH_TOKEN_KEYS: tokenKeys, ...opts.sidecarVars },
    ...(rateLimits[service] ? { ratelimits: rateLimits[service] } : {}),
    durableObjects: {
      MESH_CONTROL: { className: "MeshControl", scriptName: CONTROL_WORKER, useSQLite: true },
      ...(opts.relays === false ? {} : { MESH_RELAY: { className: "MeshRelay", scriptName: CONTROL_WORKER, useSQLite: true } }),
      ...(telemetryStore ? { TELEMETRY_STORE: { ...telemetryStore, useSQLite: true } } : {}),
    },
    serviceBindings: Object.fromEntries(instances.map((i) => [i.binding, instanceName(topology.mesh, i.id)])),
  }));
  const instances: WorkerOptions[] = [];
  for (const [service, list] of Object.entries(topology.services)) {
    for (const i of list) {
      instances.push({
        name: instanceName(topology.mesh, i.id),
        ...(await scriptOf(i.script)),
        compatibilityDate: COMPATIBILITY_DATE,
        bindings: { ENDPOINT_ID: i.id, ...i.vars },
        // The binding's props name the caller to the callee's sidecar (ctx.props): deployment
        // config the calling code cannot forge, as `props = { caller = "..." }` in wrangler.toml.
        serviceBindings: Object.fromEntries(Object.entries(i.calls ?? {}).map(([b, svc]) => [b, { name: sidecarName(svc), props: { caller: service } }])),
      });
    }
  }
  const extras: WorkerOptions[] = [];
  for (const w of topology.extraWorkers ?? []) {
    extras.push({
      name: w.name,
      ...(await scriptOf(w.script)),
      compatibilityDate: COMPATIBILITY_DATE,
      bindings: { ...w.vars },
      serviceBindings: w.serviceBindings,
      ...w.options,
    });
  }
  const all = [...sidecars, control, ...instances, ...extras];
  for (const w of all) {
    if (w.name && opts.exposeWorkers?.includes(w.name)) w.unsafeDirectSockets = [{ host: opts.host ?? "127.0.0.1", port: opts.exposedPorts?.[w.name] ?? 0 }];
  }
  // The first Worker is Miniflare's entry: the first service's sidecar.
  return all;
}

export interface RunningMesh {
  mf: Miniflare;
  /** The entry service through its sidecar. */
  url: URL;
  controlUrl: URL;
  /** The socket of a Worker named in `exposeWorkers`. */
  directUrl(worker: string): Promise<URL>;
  adminToken: string;
  /** The key set the control Worker and (unless overridden) the sidecars hold: tests sign tokens with it. */
  tokenKeys: MeshKeySet;
  /** Calls the admin API with the token. */
  admin(pathname: string, init?: RequestInit): Promise<Response>;
  /**
   * Headers that open a sidecar's debug headers: `x-edgemesh-debug: 1` and a debug credential for
   * every service, minted once through the admin API (POST /v1/debug-tokens).
   */
  debugHeaders(): Promise<Record<string, string>>;
  /** One isolate's debug view of a service's sidecar, through the admin API (GET /v1/sidecars/:service/debug/:view). */
  sidecarView(service: string, view: SidecarDebugView): Promise<any>;
  applyPolicy(document: unknown, expectedVersion?: number): Promise<Response>;
  dispose(): Promise<void>;
}

export async function startMesh(opts: MeshOptions): Promise<RunningMesh> {
  await buildWorkers();
  const token = opts.adminToken ?? DEFAULT_ADMIN_TOKEN;
  const tokenKeys = opts.tokenKeys ?? (await localTokenKeys());
  const mf = new Miniflare({
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    cf: FIXED_CF,
    log: new Log(opts.verbose ? LogLevel.INFO : LogLevel.WARN),
    ...(opts.persistRoot ? { defaultPersistRoot: opts.persistRoot } : {}),
    workers: await meshWorkers({ ...opts, tokenKeys }),
  });
  const url = await mf.ready;
  const controlUrl = await mf.unsafeGetDirectURL(CONTROL_WORKER);
  const admin = (pathname: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${token}`);
    return fetch(new URL(pathname, controlUrl), { ...init, headers });
  };
  let debugToken: Promise<string> | undefined;
  const mintDebugToken = async (): Promise<string> => {
    const res = await admin("/v1/debug-tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ttlMs: 6 * 3_600_000 }) });
    if (res.status !== 201) throw new Error(`POST /v1/debug-tokens answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { token: string }).token;
  };
  return {
    mf,
    url,
    controlUrl,
    directUrl: (worker) => mf.unsafeGetDirectURL(worker),
    adminToken: token,
    tokenKeys,
    admin,
    async debugHeaders() {
      debugToken ??= mintDebugToken();
      debugToken.catch(() => (debugToken = undefined));
      return { "x-edgemesh-debug": "1", "x-edgemesh-debug-token": await debugToken };
    },
    async sidecarView(service, view) {
      const res = await admin(`/v1/sidecars/${service}/debug/${view}`);
      if (res.status !== 200) throw new Error(`GET /v1/sidecars/${service}/debug/${view} answered ${res.status}: ${await res.text()}`);
      return res.json();
    },
    applyPolicy: (document, expectedVersion) =>
      admin("/v1/policy", {
        method: "POST",
        headers: { "content-type": "application/json", ...(expectedVersion !== undefined ? { "if-match": `"${expectedVersion}"` } : {}) },
        body: JSON.stringify(document),
      }),
    dispose: () => mf.dispose(),
  };
}

export async function readPolicy(file: string): Promise<unknown> {
  return JSON.parse(await readFile(path.resolve(ROOT, file), "utf8"));
}

/**
 * Several documents of one mesh as one: the first document with the services of the others added
 * (a companion document, such as policies/greeter.json beside policies/bookinfo.json). A service
 * in two of them, or documents of different meshes, are refused.
 */
export async function readPolicies(files: readonly string[]): Promise<unknown> {
  const [first, ...rest] = (await Promise.all(files.map(readPolicy))) as { mesh?: string; services?: Record<string, unknown> }[];
  if (first === undefined) throw new Error("no policy document given");
  const services = { ...first.services };
  for (const [i, doc] of rest.entries()) {
    if (doc.mesh !== first.mesh) throw new Error(`${files[i + 1]} is for mesh "${doc.mesh}", ${files[0]} for "${first.mesh}": one mesh at a time`);
    for (const [name, service] of Object.entries(doc.services ?? {})) {
      if (name in services) throw new Error(`service "${name}" is in both ${files[0]} (or an earlier file) and ${files[i + 1]}`);
      services[name] = service;
    }
  }
  return { ...first, services };
}
