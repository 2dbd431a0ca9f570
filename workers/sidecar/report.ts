// Passive health reports: the sidecar counts each endpoint's outcomes in a module global and hands
// them to the control plane with its next snapshot check-in, at most once per TTL, never per request.
import type { EndpointOutcome } from "../../policies/snapshot.ts";

/** Endpoints one isolate tracks between check-ins; more are dropped rather than grow unbounded. */
const MAX_TRACKED_ENDPOINTS = 1024;

const pending = new Map<string, EndpointOutcome>();
/** Failures among the pending outcomes: a check-in with failures is not put off (passive health). */
let failuresPending = 0;

/** Counts one attempt's outcome. `failed`: a 5xx answer, a timeout or a connect failure. */
export function recordOutcome(endpointId: string, failed: boolean, latencyMs: number): void {
  let o = pending.get(endpointId);
  if (!o) {
    if (pending.size >= MAX_TRACKED_ENDPOINTS) return;
    o = { endpointId, requests: 0, failures: 0, latencyMsSum: 0, latencyMsMax: 0 };
    pending.set(endpointId, o);
  }
  o.requests++;
  if (failed) {
    o.failures++;
    failuresPending++;
  }
  o.latencyMsSum += latencyMs;
  if (latencyMs > o.latencyMsMax) o.latencyMsMax = latencyMs;
}

/** Everything counted since the last call, to send with the next check-in. */
export function takeOutcomes(): EndpointOutcome[] {
  const out = [...pending.values()];
  pending.clear();
  failuresPending = 0;
  return out;
}

/** How many failed attempts wait to be reported. */
export function pendingFailures(): number {
  return failuresPending;
}

/** Puts back a batch whose check-in failed, so the next one carries it. */
export function restoreOutcomes(batch: readonly EndpointOutcome[]): void {
  for (const b of batch) {
    const o = pending.get(b.endpointId);
    if (!o) {
      if (pending.size >= MAX_TRACKED_ENDPOINTS) continue;
      pending.set(b.endpointId, { ...b });
      failuresPending += b.failures;
      continue;
    }
    failuresPending += b.failures;
    o.requests += b.requests;
    o.failures += b.failures;
    o.latencyMsSum += b.latencyMsSum;
    o.latencyMsMax = Math.max(o.latencyMsMax, b.latencyMsMax);
  }
}
