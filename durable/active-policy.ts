// The policy in force, compiled per service on demand. A service's snapshot is its own policy
// plus the instances registered for it, so a registry change recompiles that service alone (and
// the services that mirror traffic to it, whose mirror copies its endpoints); nothing else.
import { compileService } from "../policies/compile.ts";
import type { PolicyDocument, ServicePolicy } from "../policies/schema.ts";
import type { CompiledMesh } from "../policies/snapshot.ts";
import { mergeRegistered, type RegisteredInstance, type RegistryConflict } from "./registry-merge.ts";
import type { PolicyLoadError } from "./stored-policy.ts";

export type CompiledService = CompiledMesh["services"][string];

export class ActivePolicy {
  version = 0;
  document: PolicyDocument | undefined;
  /** Why the stored active version could not be loaded; cleared by the next apply or rollback. */
  loadError: PolicyLoadError | undefined;
  /** Each service compiled without its service mirrors linked. */
  private readonly base = new Map<string, CompiledService>();
  private readonly linked = new Set<string>();
  /** Service -> the services it mirrors traffic to, and the reverse. */
  private readonly mirrorTargets = new Map<string, Set<string>>();
  private mirroredBy = new Map<string, Set<string>>();
  private readonly conflictsOf = new Map<string, RegistryConflict[]>();
  /** Registrations for services this policy does not have. */
  private orphans: RegistryConflict[] = [];

  constructor(private readonly registered: (service: string) => RegisteredInstance[], private readonly registeredServices: () => string[]) {}

  /**
   * Puts a validated document in force. With `changed` (the services whose section differs from
   * the document in force, added and removed ones included) only those, and the services that
   * mirror traffic to them, compile again; every other service keeps its compiled form. Without
   * it everything compiles afresh. Returns the services whose snapshot may have changed.
   */
  activate(version: number, document: PolicyDocument, changed?: readonly string[]): string[] {
    const everything = changed === undefined || this.document === undefined;
    this.version = version;
    this.document = document;
    this.loadError = undefined;
    if (everything) {
      this.base.clear();
      this.linked.clear();
      this.mirrorTargets.clear();
      this.mirroredBy = new Map();
      for (const service of Object.keys(document.services)) this.indexMirrors(service);
      this.mergeAllRegistrations();
      return Object.keys(document.services);
    }
    for (const service of changed) this.indexMirrors(service);
    const affected = new Set(changed);
    for (const service of changed) for (const dependent of this.mirroredBy.get(service) ?? []) affected.add(dependent);
    const withRegistrations = new Set(this.registeredServices());
    for (const service of affected) {
      this.base.delete(service);
      this.linked.delete(service);
      if (withRegistrations.has(service) || this.conflictsOf.has(service)) this.mergeRegistrations(service);
    }
    return [...affected].filter((s) => document.services[s] !== undefined);
  }

  /** Records which services `service` mirrors to (none when it left the document). */
  private indexMirrors(service: string): void {
    for (const target of this.mirrorTargets.get(service) ?? []) this.mirroredBy.get(target)?.delete(service);
    const targets = new Set<string>();
    for (const route of this.document?.services[service]?.routes ?? []) if (route.mirror?.service !== undefined) targets.add(route.mirror.service);
    if (targets.size === 0) {
      this.mirrorTargets.delete(service);
      return;
    }
    this.mirrorTargets.set(service, targets);
    for (const target of targets) {
      let set = this.mirroredBy.get(target);
      if (!set) this.mirroredBy.set(target, (set = new Set()));
      set.add(service);
    }
  }

  /** No policy is in force (the stored one failed to load). */
  deactivate(error: PolicyLoadError): void {
    this.version = 0;
    this.document = undefined;
    this.loadError = error;
    this.base.clear();
    this.linked.clear();
    this.mirrorTargets.clear();
    this.mirroredBy = new Map();
    this.mergeAllRegistrations();
  }

  private mergeAllRegistrations(): void {
    this.conflictsOf.clear();
    this.orphans = [];
    for (const service of this.registeredServices()) this.mergeRegistrations(service);
  }

  private mergeRegistrations(service: string): RegisteredInstance[] {
    const instances = this.registered(service);
    const policy = this.document?.services[service];
    if (!policy) {
      this.orphans = this.orphans.filter((c) => c.service !== service);
      this.orphans.push(...mergeRegistered(undefined, instances).conflicts);
      this.conflictsOf.delete(service);
      return [];
    }
    const { conflicts } = mergeRegistered(this.onlyService(service, policy), instances);
    if (conflicts.length > 0) this.conflictsOf.set(service, conflicts);
    else this.conflictsOf.delete(service);
    return instances;
  }

  private onlyService(service: string, policy: ServicePolicy): PolicyDocument {
    return { ...this.document!, services: { [service]: policy } };
  }

  /**
   * The registry of `service` changed: it and the services mirroring to it compile again.
   * Returns every service whose snapshot may have changed.
   */
  registryChanged(service: string): string[] {
    this.mergeRegistrations(service);
    const touched = [service, ...(this.mirroredBy.get(service) ?? [])];
    for (const s of touched) {
      this.base.delete(s);
      this.linked.delete(s);
    }
    // A mirror holds the target's endpoint list: relink every service that mirrors here.
    for (const s of this.mirroredBy.get(service) ?? []) this.linked.delete(s);
    return touched.filter((s) => this.document?.services[s] !== undefined);
  }

  serviceNames(): string[] {
    return Object.keys(this.document?.services ?? {});
  }

  servicePolicy(service: string): ServicePolicy | undefined {
    return this.document?.services[service];
  }

  private compiledBase(service: string): CompiledService | undefined {
    let compiled = this.base.get(service);
    if (compiled) return compiled;
    const policy = this.document?.services[service];
    if (!policy) return undefined;
    const extra = mergeRegistered(this.onlyService(service, policy), this.registered(service)).extra[service] ?? [];
    compiled = compileService(this.document!.mesh, service, policy, extra, this.document!.access);
    this.base.set(service, compiled);
    return compiled;
  }

  /** The service compiled with its registered instances merged and its mirrors resolved. */
  compiled(service: string): CompiledService | undefined {
    const compiled = this.compiledBase(service);
    if (!compiled || this.linked.has(service)) return compiled;
    for (const route of compiled.routes) {
      if (route.mirror?.target.startsWith("service:")) route.mirror.endpoints = this.compiledBase(route.mirror.target.slice("service:".length))?.endpoints ?? [];
    }
    this.linked.add(service);
    return compiled;
  }

  /** Every conflict between declared and registered endpoints, for all services. */
  conflicts(): RegistryConflict[] {
    return [...[...this.conflictsOf.values()].flat(), ...this.orphans];
  }

  conflictsFor(service: string): RegistryConflict[] {
    return [...(this.conflictsOf.get(service) ?? []), ...this.orphans.filter((c) => c.service === service)];
  }

  endpointExists(service: string, id: string): boolean {
    return this.compiled(service)?.endpoints.some((e) => e.id === id) ?? false;
  }
}
