// The order in which a mesh's Workers are deployed, and the check that every binding of each step
// points at a Worker that exists by then. Cloudflare refuses to upload a Worker whose service
// binding or Durable Object binding names a Worker that does not exist, so:
//
//   1. the control Worker first: it defines the Durable Object classes the sidecars bind;
//   2. then service by service, callees before callers: the service's own Workers (they bind the
//      sidecars they call), then its sidecar (it binds those Workers and the control's objects).
//
// The control Worker binds every sidecar and itself, and every sidecar needs the control's
// objects: a cycle. It is broken by the secrets: the control Worker and every sidecar have
// required secrets, and `wrangler secret put` on a Worker that does not exist yet creates it (an
// empty placeholder), so once the secrets are set all of them exist and step 1 resolves. Calls
// between services may form cycles too; they never block, since Workers bind sidecars, never each
// other. `unresolvedBindings` proves it for a given state, before anything is uploaded.
import type { GeneratedWorker, WranglerConfig } from "./configs.ts";
import type { MeshDeployment } from "./description.ts";

/** The services in deploy order: a service after every service its Workers call (cycles: policy order). */
export function serviceOrder(d: MeshDeployment): string[] {
  const calls = new Map(d.services.map((s) => [s.name, new Set(s.instances.flatMap((i) => Object.values(i.calls)))]));
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (service: string) => {
    if (state.has(service)) return;
    state.set(service, "visiting");
    for (const callee of calls.get(service) ?? []) if (callee !== service) visit(callee);
    state.set(service, "done");
    order.push(service);
  };
  for (const s of d.services) visit(s.name);
  return order;
}

export function deployOrder(d: MeshDeployment, workers: readonly GeneratedWorker[]): GeneratedWorker[] {
  const plan = workers.filter((w) => w.kind === "control");
  for (const service of serviceOrder(d)) {
    plan.push(...workers.filter((w) => w.kind === "instance" && w.service === service));
    plan.push(...workers.filter((w) => w.kind === "sidecar" && w.service === service));
  }
  return plan;
}

export interface BindingTarget {
  binding: string;
  /** The Worker the binding names. */
  target: string;
}

/** Every Worker a config's bindings name: service bindings and Durable Objects of other scripts. */
export function bindingTargets(config: WranglerConfig): BindingTarget[] {
  return [
    ...(config.services ?? []).map((s) => ({ binding: s.binding, target: s.service })),
    ...(config.durable_objects?.bindings ?? []).filter((o) => o.script_name !== undefined).map((o) => ({ binding: o.name, target: o.script_name! })),
  ];
}

export interface UnresolvedBinding extends BindingTarget {
  worker: string;
}

/**
 * The bindings that would fail to upload: deploying `plan` in order, starting from the Workers
 * that `existing` names, each binding must name a Worker that exists by then (a Worker binding
 * itself must exist before its own upload, to be safe).
 */
export function unresolvedBindings(plan: readonly GeneratedWorker[], existing: ReadonlySet<string>): UnresolvedBinding[] {
  const deployed = new Set(existing);
  const unresolved: UnresolvedBinding[] = [];
  for (const w of plan) {
    for (const b of bindingTargets(w.config)) if (!deployed.has(b.target)) unresolved.push({ worker: w.config.name, ...b });
    deployed.add(w.config.name);
  }
  return unresolved;
}

/**
 * The Workers `--only` selects: "control", a service's name (its sidecar and its Workers), or a
 * Worker's name. Throws naming what does not exist.
 */
export function selectWorkers(plan: readonly GeneratedWorker[], only: readonly string[]): GeneratedWorker[] {
  const known = new Set<string>(["control"]);
  for (const w of plan) {
    known.add(w.config.name);
    if (w.service) known.add(w.service);
  }
  const unknown = only.filter((o) => !known.has(o));
  if (unknown.length) {
    const services = [...new Set(plan.flatMap((w) => (w.service ? [w.service] : [])))];
    throw new Error(`--only: ${unknown.map((u) => `"${u}"`).join(", ")} is neither "control", a service (${services.join(", ")}) nor a Worker of this mesh`);
  }
  const wanted = new Set(only);
  return plan.filter((w) => (w.kind === "control" && wanted.has("control")) || (w.service !== undefined && wanted.has(w.service)) || wanted.has(w.config.name));
}
