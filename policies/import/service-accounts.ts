// Kubernetes ServiceAccounts, the identities SMI access is written in, as the mesh's callers.
// An edgemesh caller is a service (named by its binding's props or its mesh token) or an
// identity declared in `access.identities` (a job, an origin: it presents a mesh token). A
// ServiceAccount stands for the caller the operator's mapping names (`namespace/name` first, then
// `name`); without one, for the service or declared identity of its own name. A source the
// document knows by neither is an error that says how to map it, never a guess: a wrong guess
// would refuse a real caller once the service admits only its allow rules.
import { EXTERNAL_CALLER } from "../access.ts";
import type { Field } from "./manifest.ts";
import type { ImportPlan } from "./plan.ts";
import type { ImportError } from "./types.ts";

/** `[namespace/]name` of a ServiceAccount -> the mesh caller (service or identity) it stands for. */
export type ServiceAccountMap = Record<string, string>;

export interface ServiceAccountRef {
  name: string;
  namespace: string | undefined;
}

const CALLER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ACCOUNT_KEY = /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

export const accountName = (sa: ServiceAccountRef): string => (sa.namespace ? `${sa.namespace}/${sa.name}` : sa.name);

/** The mapping's own mistakes (keys that are no ServiceAccount, values that are no caller name). */
export function checkServiceAccountMap(map: ServiceAccountMap): ImportError[] {
  const errors: ImportError[] = [];
  for (const [key, value] of Object.entries(map)) {
    const path = `serviceAccounts[${JSON.stringify(key)}]`;
    if (!ACCOUNT_KEY.test(key)) errors.push({ path, message: `"${key}" is not a ServiceAccount: write name or namespace/name (lowercase, e.g. monitoring/prometheus)` });
    if (typeof value !== "string" || !CALLER_NAME.test(value)) errors.push({ path, message: `${JSON.stringify(value)} is not a service or identity name: lowercase letters, digits and '-', 1-63 characters` });
  }
  return errors;
}

/** A ServiceAccount subject of an access resource (`kind`, `name`, `namespace`); undefined (reported) when malformed. */
export function serviceAccountOf(f: Field, defaultNamespace: string | undefined): ServiceAccountRef | undefined {
  const kind = f.string("kind") ?? "ServiceAccount";
  f.string("group");
  f.string("apiGroup");
  const name = f.string("name");
  const namespace = f.string("namespace") ?? defaultNamespace;
  if (kind !== "ServiceAccount") {
    f.at("kind").error(`only ServiceAccount identities can be mapped to mesh callers (got ${kind})`);
    return undefined;
  }
  if (!name) {
    f.error("a ServiceAccount needs a name");
    return undefined;
  }
  return { name, namespace };
}

function mapped(sa: ServiceAccountRef, map: ServiceAccountMap): string | undefined {
  return (sa.namespace !== undefined ? map[`${sa.namespace}/${sa.name}`] : undefined) ?? map[sa.name];
}

const mappingHint = (sa: ServiceAccountRef, what: string) =>
  `map it to ${what} (edgemesh import --service-account ${accountName(sa)}=<name>; ?serviceAccount=${accountName(sa)}=<name> in the admin API)`;

/** The service whose workloads run as this ServiceAccount (an access destination); undefined (reported on `f`) when none. */
export function serviceForAccount(sa: ServiceAccountRef, map: ServiceAccountMap, plan: ImportPlan, f: Field): string | undefined {
  const target = mapped(sa, map);
  const name = target ?? sa.name;
  if (plan.knownService(name)) return name;
  f.error(target !== undefined
    ? `ServiceAccount ${accountName(sa)} is mapped to "${target}", which is not a service of the mesh; an access destination must be a service (in the base document or the import)`
    : `ServiceAccount ${accountName(sa)}: no service of the mesh is named "${sa.name}"; ${mappingHint(sa, "the service whose workloads run as it")}`);
  return undefined;
}

/**
 * The caller a source ServiceAccount stands for; undefined (reported on `f`) when the document
 * knows no such caller. A mapped name that is no service becomes a declared identity (with a
 * warning saying what that means for the caller).
 */
export function callerForAccount(sa: ServiceAccountRef, map: ServiceAccountMap, plan: ImportPlan, f: Field): string | undefined {
  const target = mapped(sa, map);
  if (target !== undefined) {
    if (!plan.knownService(target) && !plan.knownIdentity(target) && target !== EXTERNAL_CALLER) {
      plan.declareIdentity(target);
      f.warn(`"${target}" (ServiceAccount ${accountName(sa)}) is not a service of the mesh, so it is declared in access.identities: that caller must present a mesh token naming it (edgemesh token issue)`);
    }
    return target;
  }
  if (CALLER_NAME.test(sa.name) && (plan.knownService(sa.name) || plan.knownIdentity(sa.name))) return sa.name;
  f.error(
    `ServiceAccount ${accountName(sa)} is neither a service nor a declared identity of the mesh; ${mappingHint(sa, "the service it runs as, or to an identity for a caller with a mesh token")}, or declare "${sa.name}" in access.identities of the base document`,
  );
  return undefined;
}
