// Retry budget per service and isolate: retries (and hedges) may add at most `percent` of the
// requests seen in a sliding window, plus a floor per second, so retries cannot amplify an outage.
// The window is ten buckets of plain numbers: no allocation per request.
import type { CompiledRetryBudget } from "../../policies/snapshot.ts";

const BUCKETS = 10;

export interface RetryBudgetState {
  requests: number[];
  retries: number[];
  /** Index (time / bucketMs) of the newest bucket. */
  newestBucket: number;
  /** The bucket length the indexes are counted in (windowMs / 10); a new window length starts afresh. */
  bucketMs: number;
  /** Retries refused by the budget, since the isolate started. */
  refused: number;
}

export function newRetryBudget(): RetryBudgetState {
  return { requests: new Array(BUCKETS).fill(0), retries: new Array(BUCKETS).fill(0), newestBucket: -1, bucketMs: 0, refused: 0 };
}

/**
 * Moves the window forward to `nowMs` and returns the slot to count in. Never backwards: a
 * timestamp older than the newest bucket (a caller that read the clock before waiting) counts in
 * the newest bucket, since rewinding would make the next call wipe the whole window and grant the
 * per-second floor again.
 */
function advance(state: RetryBudgetState, cfg: CompiledRetryBudget, nowMs: number): number {
  const bucketMs = cfg.windowMs / BUCKETS;
  if (bucketMs !== state.bucketMs) {
    // Indexes of another bucket length cannot be compared: a new window length starts a new window.
    state.bucketMs = bucketMs;
    state.newestBucket = -1;
  }
  const bucket = Math.max(state.newestBucket, Math.floor(nowMs / bucketMs));
  if (bucket !== state.newestBucket) {
    const stale = Math.min(BUCKETS, state.newestBucket < 0 ? BUCKETS : bucket - state.newestBucket);
    for (let i = 1; i <= stale; i++) {
      const slot = (((state.newestBucket + i) % BUCKETS) + BUCKETS) % BUCKETS;
      state.requests[slot] = 0;
      state.retries[slot] = 0;
    }
    state.newestBucket = bucket;
  }
  return ((bucket % BUCKETS) + BUCKETS) % BUCKETS;
}

function sum(values: number[]): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  return total;
}

export function recordRequest(state: RetryBudgetState, cfg: CompiledRetryBudget, nowMs: number): void {
  state.requests[advance(state, cfg, nowMs)]!++;
}

/** Takes one retry from the budget; false (and counted as refused) when the budget is spent. */
export function withdrawRetry(state: RetryBudgetState, cfg: CompiledRetryBudget, nowMs: number): boolean {
  const slot = advance(state, cfg, nowMs);
  const allowed = (sum(state.requests) * cfg.percent) / 100 + (cfg.minRetriesPerSecond * cfg.windowMs) / 1000;
  if (sum(state.retries) + 1 > allowed) {
    state.refused++;
    return false;
  }
  state.retries[slot]!++;
  return true;
}

export function budgetStatus(state: RetryBudgetState, cfg: CompiledRetryBudget, nowMs: number): { requests: number; retries: number; refused: number } {
  advance(state, cfg, nowMs);
  return { requests: sum(state.requests), retries: sum(state.retries), refused: state.refused };
}
