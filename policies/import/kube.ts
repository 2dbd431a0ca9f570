// Kubernetes conventions the importers share: service names from hosts, durations, percentages,
// weights as quantities, and names that fit the policy's name pattern.
import type { Field } from "./manifest.ts";

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const MAX_TIMEOUT_MS = 300_000;

/**
 * The mesh service a Kubernetes host names: `reviews`, `reviews.bookinfo`,
 * `reviews.bookinfo.svc` and `reviews.bookinfo.svc.cluster.local` are all `reviews` (namespaces
 * are dropped: an edgemesh mesh has one namespace). A string explains why a host is not one.
 */
export function serviceFromHost(host: string, namespace: string | undefined): { service: string } | { problem: string } {
  const h = host.trim().toLowerCase().replace(/\.$/, "");
  if (h.includes("*")) return { problem: `"${host}" is a wildcard host; edgemesh routes belong to one service` };
  const labels = h.split(".");
  const svcAt = labels.indexOf("svc");
  const isService = labels.length === 1 || (svcAt === 2) || (labels.length === 2 && namespace !== undefined && labels[1] === namespace);
  if (!isService) return { problem: `"${host}" is not a Kubernetes service name (name, name.namespace, name.namespace.svc[.cluster.local]); external hosts are not mesh services` };
  if (!NAME.test(labels[0]!)) return { problem: `"${labels[0]}" (from "${host}") is not a valid service name: lowercase letters, digits and '-', 1-63 characters` };
  return { service: labels[0]! };
}

/** A Kubernetes-style duration ("10s", "0.5s", "1m30s", "250ms") in milliseconds, rounded up. */
export function parseDurationMs(raw: string): number | undefined {
  const text = raw.trim();
  if (!/^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/.test(text)) return undefined;
  const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, "µs": 0.001, ns: 0.000001 };
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g)) total += Number(m[1]) * unitMs[m[2]!]!;
  return Math.ceil(total);
}

/** Reads a duration field; `undefined` when absent or malformed (malformed is reported). */
export function durationField(parent: Field, key: string): number | undefined {
  const raw = parent.at(key);
  if (!raw.present) return undefined;
  raw.use();
  // protobuf JSON also allows { seconds, nanos }.
  if (typeof raw.value === "object" && raw.value !== null) {
    raw.useWhole();
    const v = raw.value as { seconds?: number | string; nanos?: number };
    return Math.ceil(Number(v.seconds ?? 0) * 1000 + Number(v.nanos ?? 0) / 1e6);
  }
  const ms = typeof raw.value === "string" ? parseDurationMs(raw.value) : undefined;
  if (ms === undefined) raw.error(`not a duration: ${JSON.stringify(raw.value)}; write e.g. "10s", "0.5s", "250ms" or "1m30s"`);
  return ms;
}

/** Clamps a timeout into the policy's 1..300000 ms, warning when the source asked for more or for none. */
export function timeoutWithin(ms: number, field: Field, what: string): number {
  if (ms === 0) {
    field.warn(`${what} 0 means no timeout; edgemesh has none unlimited, so it is set to the longest allowed, ${MAX_TIMEOUT_MS} ms`);
    return MAX_TIMEOUT_MS;
  }
  if (ms > MAX_TIMEOUT_MS) {
    field.warn(`${what} of ${ms} ms is above edgemesh's limit; set to ${MAX_TIMEOUT_MS} ms`);
    return MAX_TIMEOUT_MS;
  }
  return Math.max(1, ms);
}

/** A Kubernetes quantity used as a weight ("90", "500m", "1k"), in its units. */
export function parseQuantity(raw: unknown): number | undefined {
  if (typeof raw === "number" && Number.isFinite(raw) && raw >= 0) return raw;
  if (typeof raw !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G)?$/.exec(raw.trim());
  if (!m) return undefined;
  const scale: Record<string, number> = { m: 0.001, k: 1000, M: 1e6, G: 1e9 };
  return Number(m[1]) * (m[2] ? scale[m[2]]! : 1);
}

/** Weights as the policy's integers, scaled up together when some are fractional ("500m"). */
export function integerWeights(weights: number[]): number[] {
  if (weights.every(Number.isInteger)) return weights;
  return weights.map((w) => Math.round(w * 1000));
}

/** Turns any name into one the policy accepts (lowercase, digits, '-', at most 63 characters). */
export function policyName(raw: string): string {
  let name = raw.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-+/g, "-").replace(/^-+|-+$/g, "");
  if (name === "") name = "route";
  if (name.length > 63) {
    // Keep it unique and recognisable: a prefix and a short hash of the whole.
    let hash = 0;
    for (const ch of raw) hash = (Math.imul(hash, 31) + ch.charCodeAt(0)) >>> 0;
    name = `${name.slice(0, 54).replace(/-+$/, "")}-${hash.toString(36).slice(0, 8)}`;
  }
  return name;
}

/** A name not in `taken`: `name`, else `name-2`, `name-3`, … (also kept within 63 characters). */
export function uniqueName(name: string, taken: Set<string>): string {
  let candidate = name;
  for (let n = 2; taken.has(candidate); n++) candidate = `${name.slice(0, 63 - String(n).length - 1)}-${n}`;
  taken.add(candidate);
  return candidate;
}
