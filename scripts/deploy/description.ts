// The mesh's deploy description: what the policy document does not say about a deployment (Worker
// names, which services are public and where, the services' own Workers and whom they call, the
// account). Validated here, checked against the policy, and resolved into `MeshDeployment`, the
// plain data the config generator works from. Pure: no I/O (paths are only joined).
import path from "node:path";
import { z } from "zod";
import { jsonPath, type PolicyDocument } from "../../policies/schema.ts";

/** Worker names are DNS labels (they become `<name>.<subdomain>.workers.dev`). */
const WORKER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SERVICE_NAME = WORKER_NAME;
const BINDING = /^[A-Z_][A-Z0-9_]*$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/i;

export const DEFAULT_CONTROL_WORKER = "edgemesh-control";
export const sidecarWorkerName = (service: string) => `edgemesh-sidecar-${service}`;
/** An instance Worker's default name: the mesh and its binding, e.g. REVIEWS_V1 -> bookinfo-reviews-v1. */
export const instanceWorkerName = (mesh: string, binding: string) => `${mesh}-${binding.toLowerCase().replace(/_/g, "-")}`;

/** The runtime date the local mesh runs (scripts/mesh.ts): deployed Workers behave the same. */
export const DEFAULT_COMPATIBILITY_DATE = "2026-04-01";
export const DEFAULT_ANALYTICS_DATASET = "edgemesh_requests";
/** Relays per region; policies/distribution.ts has the same default for a sidecar without the var. */
export const DEFAULT_RELAY_SHARDS = 4;

const workerName = (what: string) =>
  z.string().regex(WORKER_NAME, `${what} is a Worker name: lowercase letters, digits and '-', 1-63 characters, e.g. "edgemesh-sidecar-reviews"`);

const Route = z
  .object({
    pattern: z.string().min(1).max(1024).refine((p) => !p.includes("://"), "a route pattern has no scheme, e.g. \"shop.example.com/api/*\"")
      .describe('The route, e.g. "shop.example.com/reviews/*".'),
    zoneName: z.string().regex(HOSTNAME, "a zone name such as example.com").optional().describe("The zone the route belongs to."),
    zoneId: z.string().regex(/^[0-9a-f]{32}$/, "a zone id is 32 hex digits").optional().describe("The zone, by id."),
  })
  .strict()
  .refine((r) => !(r.zoneName && r.zoneId), { message: 'give at most one of "zoneName" or "zoneId"' })
  .describe("A route on a zone of the account; without a zone, wrangler infers it from the pattern.");

/** Where a Worker is reachable from the internet. Everything is internal unless it says so here. */
const exposure = (workersDevDefault: boolean) => ({
  workersDev: z.boolean().default(workersDevDefault).describe(`Serve on <name>.<subdomain>.workers.dev (default ${workersDevDefault}). The Cache API does nothing there: prefer a custom domain in production.`),
  routes: z.array(Route).max(100).default([]).describe("Routes on zones of the account."),
  customDomains: z.array(z.string().regex(HOSTNAME, "a hostname such as bookinfo.example.com")).max(100).default([])
    .describe("Hostnames the Worker serves as a custom domain (Cloudflare creates the DNS record and certificate)."),
});

const Instance = z
  .object({
    binding: z.string().regex(BINDING, "a binding name is UPPER_SNAKE_CASE, e.g. REVIEWS_V1").describe("The sidecar's binding to this Worker: a policy endpoint with this `binding` reaches it."),
    worker: workerName("worker").optional().describe("The Worker's name; default <mesh>-<binding in lowercase with '-'>, e.g. bookinfo-reviews-v1."),
    main: z.string().min(1).optional()
      .describe("Its entry module, relative to this file. Omitted: a Worker deployed some other way, which the sidecar only binds (it must exist)."),
    vars: z.record(z.string().regex(VAR_NAME, "a variable name"), z.string().max(5120)).default({}).describe("Plain-text variables (never secrets)."),
    calls: z.record(z.string().regex(BINDING, "a binding name is UPPER_SNAKE_CASE, e.g. RATINGS"), z.string().regex(SERVICE_NAME, "a service name"))
      .default({})
      .describe('Services this Worker calls: binding name -> service. Each becomes a binding to that service\'s sidecar with props { caller: "<this service>" }.'),
  })
  .strict()
  .describe("A Worker that serves one of the service's endpoints.");

const ServiceDeploy = z
  .object({
    sidecar: workerName("sidecar").optional().describe("The sidecar Worker's name; default edgemesh-sidecar-<service>."),
    ...exposure(false),
    instances: z.array(Instance).max(1024).default([]).describe("The service's Workers: one per binding endpoint of the policy (more may be bound for self-registration)."),
    rateLimitNamespaces: z.record(z.string().regex(BINDING, "a binding name"), z.number().int().min(1).max(2_147_483_647)).default({})
      .describe("namespace_id of a shared rate limit's binding, by binding name; default a number derived from mesh, service and binding."),
  })
  .strict();

export const DeployDescription = z
  .object({
    $schema: z.string().optional(),
    policy: z.string().min(1).describe("The policy document (JSON), relative to this file."),
    accountId: z.string().regex(/^[0-9a-f]{32}$/, "an account id is 32 hex digits").optional()
      .describe("The Cloudflare account; omitted: wrangler's (CLOUDFLARE_ACCOUNT_ID, or the only account of the login)."),
    compatibilityDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "a date such as 2026-04-01").default(DEFAULT_COMPATIBILITY_DATE)
      .describe("compatibility_date of every generated Worker."),
    analyticsDataset: z.string().regex(/^[A-Za-z0-9_]{1,64}$/, "letters, digits and '_'").default(DEFAULT_ANALYTICS_DATASET)
      .describe("The Analytics Engine dataset sidecars write to and the control plane queries."),
    relayShards: z.number().int().min(1).max(64).default(DEFAULT_RELAY_SHARDS).describe("Relays per region (EDGEMESH_RELAY_SHARDS on every sidecar)."),
    control: z
      .object({
        name: workerName("control name").default(DEFAULT_CONTROL_WORKER).describe("The control Worker's name."),
        ...exposure(true),
      })
      .strict()
      .prefault({})
      .describe("The control Worker (admin API, dashboard, Durable Objects). On workers.dev by default; every admin call needs a token."),
    services: z.record(z.string().regex(SERVICE_NAME, "a service name"), ServiceDeploy).default({})
      .describe("Per service of the policy; a service not listed gets an internal sidecar and no instances (valid only if it has no binding endpoints)."),
  })
  .strict();

export type DeployDescriptionInput = z.input<typeof DeployDescription>;

// ---- the resolved deployment ----------------------------------------------------------------------

export interface Exposure {
  workersDev: boolean;
  routes: { pattern: string; zoneName?: string; zoneId?: string }[];
  customDomains: string[];
}

export interface SharedRateLimitBinding {
  binding: string;
  limit: number;
  periodSeconds: 10 | 60;
  namespaceId: number;
}

export interface InstanceDeployment {
  service: string;
  binding: string;
  worker: string;
  /** Absolute path of the entry module; undefined for a Worker deployed some other way. */
  main?: string;
  vars: Record<string, string>;
  /** Binding name -> the service whose sidecar it reaches. */
  calls: Record<string, string>;
}

export interface ServiceDeployment {
  name: string;
  sidecar: string;
  expose: Exposure;
  instances: InstanceDeployment[];
  rateLimits: SharedRateLimitBinding[];
}

export interface MeshDeployment {
  mesh: string;
  accountId?: string;
  compatibilityDate: string;
  analyticsDataset: string;
  relayShards: number;
  control: { name: string; expose: Exposure };
  /** Every service of the policy, in the policy's order. */
  services: ServiceDeployment[];
}

export interface DescriptionError {
  /** JSON path in the description (`$.services.reviews.instances[0].binding`), or in the policy (`policy: $...`). */
  path: string;
  message: string;
}

export type DescriptionResult = { ok: true; deployment: MeshDeployment } | { ok: false; errors: DescriptionError[] };

/** Bindings and variables every sidecar has; an instance binding or rate limit may not take them. */
export const SIDECAR_RESERVED_NAMES = new Set(["SERVICE_NAME", "MESH_NAME", "MESH_CONTROL", "MESH_RELAY", "TELEMETRY", "TELEMETRY_STORE", "TELEMETRY_DATASET"]);
const isReservedSidecarName = (name: string) => SIDECAR_RESERVED_NAMES.has(name) || name.startsWith("EDGEMESH_") || name.startsWith("SNAPSHOT_") || name.startsWith("COLD_SNAPSHOT_");

/**
 * A shared limit's default namespace_id: FNV-1a of mesh, service and binding, placed above 1,000,000
 * so it stays clear of the small numbers people pick by hand. The same description always gives
 * the same number, so redeploying never moves a limit to a fresh counter.
 */
export function defaultRateLimitNamespace(mesh: string, service: string, binding: string): number {
  let h = 0x811c9dc5;
  const text = `${mesh}/${service}/${binding}`;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return 1_000_000 + ((h >>> 0) % (2_147_483_647 - 1_000_000));
}

/**
 * Validates a description against its (already validated) policy document and resolves names,
 * defaults and paths. Every problem is reported with its path, never only the first.
 */
export function resolveDeployment(input: unknown, policy: PolicyDocument, descriptionDir: string): DescriptionResult {
  const parsed = DeployDescription.safeParse(input);
  if (!parsed.success) {
    // An unknown field is named in the path (a typo shows where it is), not only in the message.
    const errors = parsed.error.issues.flatMap((i) =>
      i.code === "unrecognized_keys"
        ? i.keys.map((key) => ({ path: jsonPath([...i.path, key]), message: `unknown field "${key}" (a typo?)` }))
        : [{ path: jsonPath(i.path), message: i.message }],
    );
    return { ok: false, errors };
  }
  const d = parsed.data;
  const errors: DescriptionError[] = [];
  const problem = (p: PropertyKey[], message: string) => errors.push({ path: jsonPath(p), message });
  const policyServices = Object.keys(policy.services);

  for (const service of Object.keys(d.services)) {
    if (!policy.services[service]) problem(["services", service], `"${service}" is not a service of the policy (mesh "${policy.mesh}"); its services: ${policyServices.join(", ")}`);
  }

  const workerOwners = new Map<string, string>();
  const claimWorker = (name: string, at: PropertyKey[]) => {
    const owner = workerOwners.get(name);
    if (owner !== undefined) problem(at, `Worker name "${name}" is already used by ${owner}`);
    else workerOwners.set(name, jsonPath(at));
  };
  claimWorker(d.control.name, ["control", "name"]);

  const namespaceOwners = new Map<number, string>();
  const services: ServiceDeployment[] = [];
  for (const [service, svc] of Object.entries(policy.services)) {
    const desc = d.services[service];
    const at = (...rest: PropertyKey[]) => ["services", service, ...rest];
    const sidecar = desc?.sidecar ?? sidecarWorkerName(service);
    if (!WORKER_NAME.test(sidecar)) problem(at(), `the default sidecar name "${sidecar}" is longer than 63 characters; set "sidecar" to a shorter Worker name`);
    claimWorker(sidecar, desc?.sidecar ? at("sidecar") : at());

    // Shared rate limits: one `ratelimits` binding per binding name, with the limit's numbers.
    const rateLimits: SharedRateLimitBinding[] = [];
    svc.rateLimits.forEach((limit, i) => {
      if (!limit.shared) return;
      const periodSeconds = limit.periodMs === 10_000 ? 10 : 60;
      // A binding named twice has one limit and period: the policy schema refuses anything else
      // (policies/ratelimit.ts), so the first mention configures it.
      if (rateLimits.some((r) => r.binding === limit.shared!.binding)) return;
      const namespaceId = desc?.rateLimitNamespaces[limit.shared.binding] ?? defaultRateLimitNamespace(policy.mesh, service, limit.shared.binding);
      const owner = namespaceOwners.get(namespaceId);
      const where = `services.${service} binding ${limit.shared.binding}`;
      if (owner !== undefined) problem(at("rateLimitNamespaces", limit.shared.binding), `namespace ${namespaceId} is already used by ${owner}; give each shared limit its own namespace`);
      else namespaceOwners.set(namespaceId, where);
      if (isReservedSidecarName(limit.shared.binding)) {
        errors.push({ path: `policy: ${jsonPath(["services", service, "rateLimits", i, "shared", "binding"])}`, message: `${limit.shared.binding} is a name every sidecar already uses; pick another binding name` });
      }
      rateLimits.push({ binding: limit.shared.binding, limit: limit.requests, periodSeconds, namespaceId });
    });
    for (const binding of Object.keys(desc?.rateLimitNamespaces ?? {})) {
      if (!rateLimits.some((r) => r.binding === binding)) {
        problem(at("rateLimitNamespaces", binding), `no shared rate limit of "${service}" uses binding ${binding}; shared bindings of its policy: ${rateLimits.map((r) => r.binding).join(", ") || "(none)"}`);
      }
    }

    const instances: InstanceDeployment[] = [];
    const bindings = new Map<string, number>();
    (desc?.instances ?? []).forEach((inst, i) => {
      const first = bindings.get(inst.binding);
      if (first !== undefined) problem(at("instances", i, "binding"), `binding ${inst.binding} is already served by instances[${first}]`);
      else bindings.set(inst.binding, i);
      if (isReservedSidecarName(inst.binding)) problem(at("instances", i, "binding"), `${inst.binding} is a name every sidecar already uses; pick another binding name (and use it in the policy's endpoint)`);
      if (rateLimits.some((r) => r.binding === inst.binding)) problem(at("instances", i, "binding"), `${inst.binding} is also a shared rate limit's binding of "${service}"`);
      const worker = inst.worker ?? instanceWorkerName(policy.mesh, inst.binding);
      if (!WORKER_NAME.test(worker)) problem(at("instances", i), `the default Worker name "${worker}" is not a valid Worker name (lowercase letters, digits and '-', at most 63); set "worker"`);
      claimWorker(worker, at("instances", i, inst.worker ? "worker" : "binding"));
      if (inst.main === undefined && Object.keys(inst.calls).length > 0) {
        problem(at("instances", i, "calls"), `edgemesh generates the bindings of the Workers it deploys only; give "main" (its entry module) or configure this Worker's bindings yourself`);
      }
      if (inst.main === undefined && Object.keys(inst.vars).length > 0) {
        problem(at("instances", i, "vars"), `vars are set on the Workers edgemesh deploys only; give "main" or drop "vars"`);
      }
      for (const [binding, callee] of Object.entries(inst.calls)) {
        if (!policy.services[callee]) problem(at("instances", i, "calls", binding), `"${callee}" is not a service of the policy; its services: ${policyServices.join(", ")}`);
        if (binding in inst.vars) problem(at("instances", i, "calls", binding), `${binding} is also one of this Worker's vars`);
      }
      instances.push({
        service,
        binding: inst.binding,
        worker,
        ...(inst.main !== undefined ? { main: path.resolve(descriptionDir, inst.main) } : {}),
        vars: inst.vars,
        calls: inst.calls,
      });
    });

    // Every binding endpoint of the policy needs a Worker behind it, or the sidecar could never reach it.
    svc.endpoints.forEach((endpoint, i) => {
      if (endpoint.binding === undefined || bindings.has(endpoint.binding)) return;
      problem(desc ? at("instances") : at(), `the policy's endpoint "${endpoint.id}" (services.${service}.endpoints[${i}]) uses binding ${endpoint.binding}, which no instance serves; add { "binding": "${endpoint.binding}", "main": "<its entry module>" }, or { "binding": "${endpoint.binding}", "worker": "<an existing Worker>" }`);
    });

    services.push({ name: service, sidecar, expose: pickExposure(desc), instances, rateLimits });
  }

  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    deployment: {
      mesh: policy.mesh,
      ...(d.accountId !== undefined ? { accountId: d.accountId } : {}),
      compatibilityDate: d.compatibilityDate,
      analyticsDataset: d.analyticsDataset,
      relayShards: d.relayShards,
      control: { name: d.control.name, expose: pickExposure(d.control) },
      services,
    },
  };
}

function pickExposure(e: Partial<Exposure> | undefined): Exposure {
  return { workersDev: e?.workersDev ?? false, routes: e?.routes ?? [], customDomains: e?.customDomains ?? [] };
}

export function isPublic(e: Exposure): boolean {
  return e.workersDev || e.routes.length > 0 || e.customDomains.length > 0;
}
