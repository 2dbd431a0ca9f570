// The wrangler configuration of every Worker of a mesh, from its resolved deployment: the control
// Worker, one sidecar per service, and the services' own Workers (instances). Pure: plain data in,
// plain data out; `main` paths come out relative to the folder the configs are written to.
import path from "node:path";
import { SIDECAR_CONTROL_ENTRYPOINT, sidecarBindingName } from "../../durable/bindings.ts";
import { type Exposure, type InstanceDeployment, type MeshDeployment, type ServiceDeployment } from "./description.ts";
import { CONTROL_SECRETS, SIDECAR_SECRETS, requiredSecretNames } from "./secrets.ts";

/** The subset of wrangler's configuration (wrangler.json) that edgemesh generates. */
export interface WranglerConfig {
  $schema?: string;
  name: string;
  account_id?: string;
  main: string;
  compatibility_date: string;
  compatibility_flags?: string[];
  workers_dev: boolean;
  preview_urls: boolean;
  routes?: WranglerRoute[];
  vars?: Record<string, string>;
  secrets?: { required: string[] };
  durable_objects?: { bindings: { name: string; class_name: string; script_name?: string }[] };
  migrations?: { tag: string; new_sqlite_classes: string[] }[];
  analytics_engine_datasets?: { binding: string; dataset: string }[];
  services?: ServiceBinding[];
  ratelimits?: { name: string; namespace_id: string; simple: { limit: number; period: 10 | 60 } }[];
}

export type WranglerRoute = { pattern: string; custom_domain: true } | { pattern: string; zone_name: string } | { pattern: string; zone_id: string } | { pattern: string };

export interface ServiceBinding {
  binding: string;
  service: string;
  entrypoint?: string;
  props?: Record<string, string>;
}

export type WorkerKind = "control" | "sidecar" | "instance";

export interface GeneratedWorker {
  kind: WorkerKind;
  /** The service a sidecar or instance belongs to. */
  service?: string;
  config: WranglerConfig;
}

export interface GenerateOptions {
  /** The edgemesh package's root folder (where workers/ is). */
  root: string;
  /** The folder the configs are written to; `main` and `$schema` are relative to it. */
  outDir: string;
  /** wrangler's config-schema.json, for editors; omitted: no `$schema`. */
  wranglerSchema?: string;
}

export const CONTROL_MAIN = "workers/control/index.ts";
export const SIDECAR_MAIN = "workers/sidecar/index.ts";

/**
 * The control Worker's Durable Object migrations, in the order they were first deployed. Append
 * only: a deployed tag must never change or move, or Cloudflare refuses the next deploy (or worse,
 * a class loses its storage).
 */
export const CONTROL_MIGRATIONS: NonNullable<WranglerConfig["migrations"]> = [
  { tag: "v1", new_sqlite_classes: ["MeshControl"] },
  { tag: "v2", new_sqlite_classes: ["TelemetryStore"] },
  { tag: "v3", new_sqlite_classes: ["MeshRelay"] },
];

/** The control plane's Durable Objects; sidecars bind the first two on the control Worker. */
export const CONTROL_DURABLE_OBJECTS = [
  { name: "MESH_CONTROL", class_name: "MeshControl" },
  { name: "MESH_RELAY", class_name: "MeshRelay" },
  { name: "TELEMETRY_STORE", class_name: "TelemetryStore" },
];

/** The sidecar's entrypoint the control plane calls for probes and debug views (never public). */
export { SIDECAR_CONTROL_ENTRYPOINT };
/** request.signal tells the sidecar when a client disconnects, so it can stop work for it. */
export const SIDECAR_COMPATIBILITY_FLAGS = ["enable_request_signal"];

export function generateWorkers(d: MeshDeployment, opts: GenerateOptions): GeneratedWorker[] {
  return [
    { kind: "control", config: controlConfig(d, opts) },
    ...d.services.map((s): GeneratedWorker => ({ kind: "sidecar", service: s.name, config: sidecarConfig(d, s, opts) })),
    ...d.services.flatMap((s) =>
      s.instances.filter((i) => i.main !== undefined).map((i): GeneratedWorker => ({ kind: "instance", service: s.name, config: instanceConfig(d, i, opts) })),
    ),
  ];
}

function base(d: MeshDeployment, name: string, main: string, expose: Exposure, opts: GenerateOptions): WranglerConfig {
  const routes = routesOf(expose);
  return {
    ...(opts.wranglerSchema ? { $schema: relative(opts.outDir, opts.wranglerSchema) } : {}),
    name,
    ...(d.accountId ? { account_id: d.accountId } : {}),
    main: relative(opts.outDir, main),
    compatibility_date: d.compatibilityDate,
    workers_dev: expose.workersDev,
    // Preview URLs would be one more public address per version: never for a mesh Worker.
    preview_urls: false,
    ...(routes.length ? { routes } : {}),
  };
}

export function controlConfig(d: MeshDeployment, opts: GenerateOptions): WranglerConfig {
  return {
    ...base(d, d.control.name, path.join(opts.root, CONTROL_MAIN), d.control.expose, opts),
    vars: { MESH_NAME: d.mesh, TELEMETRY_DATASET: d.analyticsDataset },
    secrets: { required: requiredSecretNames(CONTROL_SECRETS) },
    durable_objects: { bindings: CONTROL_DURABLE_OBJECTS.map((o) => ({ ...o })) },
    migrations: CONTROL_MIGRATIONS.map((m) => ({ tag: m.tag, new_sqlite_classes: [...m.new_sqlite_classes] })),
    services: [
      // Health checks run in batches, each an invocation of this Worker's own HealthProbe entrypoint
      // with its own connection and subrequest limits (durable/check-runner.ts).
      { binding: "HEALTH_PROBE", service: d.control.name, entrypoint: "HealthProbe" },
      // MeshControl reaches each sidecar for binding health checks and debug views.
      ...d.services.map((s) => ({ binding: sidecarBindingName(s.name), service: s.sidecar, entrypoint: SIDECAR_CONTROL_ENTRYPOINT })),
    ],
  };
}

export function sidecarConfig(d: MeshDeployment, s: ServiceDeployment, opts: GenerateOptions): WranglerConfig {
  const config: WranglerConfig = {
    ...base(d, s.sidecar, path.join(opts.root, SIDECAR_MAIN), s.expose, opts),
    compatibility_flags: [...SIDECAR_COMPATIBILITY_FLAGS],
    vars: { SERVICE_NAME: s.name, MESH_NAME: d.mesh, EDGEMESH_RELAY_SHARDS: String(d.relayShards) },
    secrets: { required: requiredSecretNames(SIDECAR_SECRETS) },
    durable_objects: {
      bindings: [
        { name: "MESH_CONTROL", class_name: "MeshControl", script_name: d.control.name },
        { name: "MESH_RELAY", class_name: "MeshRelay", script_name: d.control.name },
      ],
    },
    analytics_engine_datasets: [{ binding: "TELEMETRY", dataset: d.analyticsDataset }],
  };
  if (s.instances.length) config.services = s.instances.map((i) => ({ binding: i.binding, service: i.worker }));
  if (s.rateLimits.length) {
    config.ratelimits = s.rateLimits.map((r) => ({ name: r.binding, namespace_id: String(r.namespaceId), simple: { limit: r.limit, period: r.periodSeconds } }));
  }
  return config;
}

export function instanceConfig(d: MeshDeployment, i: InstanceDeployment, opts: GenerateOptions): WranglerConfig {
  if (i.main === undefined) throw new Error(`instance ${i.worker} is not deployed by edgemesh (it has no main)`);
  const sidecarOf = new Map(d.services.map((s) => [s.name, s.sidecar]));
  const config: WranglerConfig = base(d, i.worker, i.main, { workersDev: false, routes: [], customDomains: [] }, opts);
  if (Object.keys(i.vars).length) config.vars = { ...i.vars };
  const calls = Object.entries(i.calls);
  if (calls.length) {
    // The props name the caller to the callee's sidecar (ctx.props.caller): set by this config, so
    // the calling code cannot claim to be anyone else.
    config.services = calls.map(([binding, callee]) => ({ binding, service: sidecarOf.get(callee)!, props: { caller: i.service } }));
  }
  return config;
}

function routesOf(e: Exposure): WranglerRoute[] {
  return [
    ...e.routes.map((r): WranglerRoute => (r.zoneName ? { pattern: r.pattern, zone_name: r.zoneName } : r.zoneId ? { pattern: r.pattern, zone_id: r.zoneId } : { pattern: r.pattern })),
    ...e.customDomains.map((host): WranglerRoute => ({ pattern: host, custom_domain: true })),
  ];
}

/** A path as wrangler reads it from a config in `from`: relative, with forward slashes. */
function relative(from: string, to: string): string {
  const rel = path.relative(from, to).split(path.sep).join("/");
  return rel.startsWith(".") ? rel : `./${rel}`;
}

