// What each event of the watch stream says, in a line, and how the events view filters them. Pure.
import type { MeshEvent } from "./types.ts";
import { formatDuration } from "./format.ts";

export type EventGroup = "policy" | "registry" | "health" | "rollout";

export const EVENT_GROUPS: { group: EventGroup; label: string; types: string[] }[] = [
  { group: "policy", label: "Policy", types: ["policy.applied", "policy.rolled-back", "policy.load-failed"] },
  { group: "registry", label: "Registry", types: ["endpoint.registered", "endpoint.deregistered", "endpoint.expired"] },
  { group: "health", label: "Health", types: ["health.changed"] },
  {
    group: "rollout",
    label: "Rollouts",
    types: ["rollout.created", "rollout.started", "rollout.checked", "rollout.advanced", "rollout.paused", "rollout.resumed", "rollout.promoted", "rollout.rolled-back", "rollout.failed"],
  },
];

export function eventGroup(type: string): EventGroup | undefined {
  return EVENT_GROUPS.find((g) => g.types.includes(type))?.group;
}

/** The service an event is about, when it is about one. */
export function eventService(e: MeshEvent): string | undefined {
  return typeof e.data.service === "string" ? e.data.service : undefined;
}

const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));

export function eventSummary(e: MeshEvent): string {
  const d = e.data;
  switch (e.type) {
    case "policy.applied":
      return `policy v${str(d.version)} applied by ${str(d.author) || "unknown"}${d.message ? `: “${str(d.message)}”` : ""}`;
    case "policy.rolled-back":
      return `policy rolled back to v${str(d.restoredVersion)} as v${str(d.version)} by ${str(d.author) || "unknown"}`;
    case "policy.load-failed":
      return `stored policy v${str(d.version)} no longer loads: ${str(d.message)}`;
    case "endpoint.registered":
      return `${str(d.service)}/${str(d.endpointId)} ${d.renewed ? "renewed its lease" : "registered"} (lease ${formatDuration(Number(d.leaseTtlMs))})`;
    case "endpoint.deregistered":
      return `${str(d.service)}/${str(d.endpointId)} deregistered`;
    case "endpoint.expired":
      return `${str(d.service)}/${str(d.endpointId)} lease expired (no heartbeat within ${formatDuration(Number(d.leaseTtlMs))})`;
    case "health.changed":
      return `${str(d.service)}/${str(d.endpointId)} ${str(d.from)} → ${str(d.to)} (${str(d.source)}${d.reason ? `: ${str(d.reason)}` : ""})`;
    case "rollout.created":
      return `${str(d.service)}: rollout ${str(d.stable)} → ${str(d.canary)} declared (${str(d.reason)})`;
    case "rollout.checked": {
      const check = (d.check ?? {}) as { verdict?: string; measured?: { requests?: number; successRate?: number | null; p99Ms?: number | null } | null; findings?: string[] };
      const m = check.measured;
      const measured = m ? `${Math.round(Number(m.requests))} requests, success ${m.successRate === null || m.successRate === undefined ? "–" : `${(Number(m.successRate) * 100).toFixed(2)}%`}, p99 ${m.p99Ms === null || m.p99Ms === undefined ? "–" : `${Math.round(Number(m.p99Ms))} ms`}` : "nothing measured";
      return `${str(d.service)}: check at ${str(d.canaryWeight)}% ${check.verdict === "pass" ? "passed" : check.verdict === "fail" ? "FAILED" : "could not judge"} (${measured})${check.findings?.length ? `: ${check.findings.join("; ")}` : ""}`;
    }
    case "rollout.started":
    case "rollout.advanced":
    case "rollout.paused":
    case "rollout.resumed":
    case "rollout.promoted":
    case "rollout.rolled-back":
    case "rollout.failed":
      return `${str(d.service)}: rollout ${e.type.slice("rollout.".length)}${d.by && d.by !== "rollout" ? ` by ${str(d.by)}` : ""}: ${str(d.reason)}${d.version ? ` (v${str(d.version)})` : ""}`;
    default:
      return JSON.stringify(d);
  }
}

export interface EventFilter {
  groups: ReadonlySet<EventGroup>;
  /** "" for every service. */
  service: string;
}

export function eventMatches(e: MeshEvent, filter: EventFilter): boolean {
  const group = eventGroup(e.type);
  if (group !== undefined && !filter.groups.has(group)) return false;
  if (filter.service !== "" && eventService(e) !== filter.service) return false;
  return true;
}
