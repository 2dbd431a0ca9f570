// Circuit breaking per service and isolate: at most maxConcurrent requests in flight upstream and
// maxPending waiting for a slot; anything beyond gets a fast 503 saying which limit it hit.
import type { CompiledCircuitBreaker } from "../../policies/snapshot.ts";

interface Waiter {
  grant: () => void;
  cancelled: boolean;
}

export interface BreakerState {
  active: number;
  /** FIFO of requests waiting for a slot; cancelled ones are skipped when a slot frees. */
  queue: Waiter[];
  pending: number;
  rejectedConcurrent: number;
  rejectedPending: number;
}

export function newBreaker(): BreakerState {
  return { active: 0, queue: [], pending: 0, rejectedConcurrent: 0, rejectedPending: 0 };
}

export type Admission =
  | { kind: "admitted" }
  | { kind: "rejected"; reason: "max-pending" }
  /** `cancel` answers false when the slot was granted meanwhile: the caller then owns it and must release it. */
  | { kind: "queued"; granted: Promise<void>; cancel: () => boolean };

const ADMITTED: Admission = Object.freeze({ kind: "admitted" });

/** Asks for a slot. Every admitted (or granted) request must call `release` exactly once. */
export function admit(state: BreakerState, cfg: CompiledCircuitBreaker): Admission {
  if (state.active < cfg.maxConcurrent) {
    state.active++;
    return ADMITTED;
  }
  if (state.pending >= cfg.maxPending) {
    state.rejectedPending++;
    return { kind: "rejected", reason: "max-pending" };
  }
  let waiter!: Waiter;
  const granted = new Promise<void>((resolve) => {
    waiter = { grant: resolve, cancelled: false };
  });
  state.queue.push(waiter);
  state.pending++;
  return {
    kind: "queued",
    granted,
    cancel: () => {
      if (waiter.cancelled) return false;
      waiter.cancelled = true;
      state.pending--;
      return true;
    },
  };
}

/** Frees a slot: handed straight to the oldest waiter, if any. */
export function release(state: BreakerState): void {
  while (state.queue.length > 0) {
    const waiter = state.queue.shift()!;
    if (waiter.cancelled) continue;
    // The slot passes on: `active` stays the same.
    waiter.cancelled = true;
    state.pending--;
    waiter.grant();
    return;
  }
  if (state.active > 0) state.active--;
}
