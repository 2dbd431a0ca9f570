// Circuit breaking per service and isolate: at most maxConcurrent requests in flight upstream and
// maxPending waiting for a slot; anything beyond gets a fast 503 saying which limit it hit.
// A slot is a lease (lease.ts): it carries its request's deadline, and one whose request vanished
// without returning it is reclaimed at the next admission after that deadline. A waiter carries
// its deadline too, so a slot is never handed to a request that gave up or disappeared.
import type { CompiledCircuitBreaker } from "../../policies/snapshot.ts";
import { holdLease, newLeaseTable, reclaimExpired, returnLease, type Lease, type LeaseTable } from "./lease.ts";

interface Waiter {
  /** waiting: in the queue; granted: owns a slot; gone: gave up, or its deadline passed in the queue. */
  state: "waiting" | "granted" | "gone";
  /** The waiter's request deadline: the slot it is granted carries it, and after it no slot is granted. */
  deadlineMs: number;
  grant: (slot: Lease) => void;
}

export interface BreakerState {
  slots: LeaseTable;
  /** FIFO of requests waiting for a slot; ones that are gone are skipped when a slot frees. */
  queue: Waiter[];
  /** Waiters in state "waiting". */
  pending: number;
  /** The earliest deadline of a waiter in the queue (a lower bound), for dropping expired ones. */
  nextWaiterExpiryMs: number;
  rejectedPending: number;
}

export function newBreaker(): BreakerState {
  return { slots: newLeaseTable(), queue: [], pending: 0, nextWaiterExpiryMs: Infinity, rejectedPending: 0 };
}

export type Admission =
  | { kind: "admitted"; slot: Lease }
  | { kind: "rejected"; reason: "max-pending" }
  /**
   * `cancel` gives up waiting and answers true; it answers false when the slot was granted
   * meanwhile: `granted` then holds it and the caller must release it.
   */
  | { kind: "queued"; granted: Promise<Lease>; cancel: () => boolean };

/** Requests holding a slot now. */
export function activeSlots(state: BreakerState): number {
  return state.slots.held.size;
}

/** Hands a free slot to the oldest waiter still waiting within its deadline; false when there is none. */
function handToWaiter(state: BreakerState, nowMs: number): boolean {
  while (state.queue.length > 0) {
    const waiter = state.queue.shift()!;
    if (waiter.state !== "waiting") continue;
    state.pending--;
    if (waiter.deadlineMs <= nowMs) {
      waiter.state = "gone";
      continue;
    }
    waiter.state = "granted";
    waiter.grant(holdLease(state.slots, { expiresAtMs: waiter.deadlineMs, held: true }));
    return true;
  }
  return false;
}

/**
 * Reclaims slots whose deadline passed (their requests vanished) and drops waiters whose deadline
 * passed while queued. Cheap unless a deadline has passed. Also called before reporting state.
 */
export function reclaimBreaker(state: BreakerState, nowMs: number): void {
  reclaimExpired(state.slots, nowMs, () => handToWaiter(state, nowMs));
  if (nowMs >= state.nextWaiterExpiryMs) {
    let next = Infinity;
    for (const waiter of state.queue) {
      if (waiter.state !== "waiting") continue;
      if (waiter.deadlineMs <= nowMs) {
        waiter.state = "gone";
        state.pending--;
      } else if (waiter.deadlineMs < next) next = waiter.deadlineMs;
    }
    state.queue = state.queue.filter((w) => w.state === "waiting");
    state.nextWaiterExpiryMs = next;
  }
}

/**
 * Asks for a slot for a request that must be done by `deadlineMs`. Every admitted (or granted)
 * request must `release` its slot once; one that never does loses it at its deadline.
 */
export function admit(state: BreakerState, cfg: CompiledCircuitBreaker, nowMs: number, deadlineMs: number): Admission {
  reclaimBreaker(state, nowMs);
  if (state.slots.held.size < cfg.maxConcurrent) {
    return { kind: "admitted", slot: holdLease(state.slots, { expiresAtMs: deadlineMs, held: true }) };
  }
  if (state.pending >= cfg.maxPending) {
    state.rejectedPending++;
    return { kind: "rejected", reason: "max-pending" };
  }
  let waiter!: Waiter;
  const granted = new Promise<Lease>((resolve) => {
    waiter = { state: "waiting", deadlineMs, grant: resolve };
  });
  state.queue.push(waiter);
  state.pending++;
  if (deadlineMs < state.nextWaiterExpiryMs) state.nextWaiterExpiryMs = deadlineMs;
  return {
    kind: "queued",
    granted,
    cancel: () => {
      if (waiter.state === "granted") return false;
      if (waiter.state === "waiting") state.pending--;
      waiter.state = "gone";
      return true;
    },
  };
}

/** Returns a slot: handed straight to the oldest live waiter, if any. A slot already reclaimed is ignored. */
export function release(state: BreakerState, slot: Lease, nowMs: number): void {
  if (!returnLease(state.slots, slot)) return;
  handToWaiter(state, nowMs);
}
