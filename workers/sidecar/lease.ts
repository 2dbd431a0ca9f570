// Per-isolate accounting that cannot leak. What a request holds (a breaker slot, an in-flight try)
// is a lease with a deadline, not a bare counter: when a client disconnects, workerd may drop the
// request's pending continuations (cloudflare/workerd#3033), so its `finally` never returns what it
// took. Such a lease is reclaimed by the next sweep after its deadline instead of being lost for the
// life of the isolate. A sweep is a comparison on the hot path; it only walks the leases when the
// earliest deadline has passed.

/**
 * How long after its holder's own deadline a lease may be reclaimed: a holder that is merely late
 * (a timer firing behind schedule on a busy isolate) is never robbed; one that vanished is.
 */
export const LEASE_GRACE_MS = 1000;

export interface Lease {
  /** After this (Date.now() ms) the lease may be reclaimed; only ever moved later. */
  expiresAtMs: number;
  /** false once returned or reclaimed: a lease is given back at most once. */
  held: boolean;
}

export interface LeaseTable<L extends Lease = Lease> {
  held: Set<L>;
  /** No lease expires before this; a lower bound, since leases are extended without updating it. */
  nextExpiryMs: number;
  /** Leases reclaimed after their deadline since the isolate started: each one a request that vanished. */
  reclaimed: number;
}

export function newLeaseTable<L extends Lease>(): LeaseTable<L> {
  return { held: new Set(), nextExpiryMs: Infinity, reclaimed: 0 };
}

/** Records `lease` (held, with its deadline) as taken. */
export function holdLease<L extends Lease>(table: LeaseTable<L>, lease: L): L {
  table.held.add(lease);
  if (lease.expiresAtMs < table.nextExpiryMs) table.nextExpiryMs = lease.expiresAtMs;
  return lease;
}

/** Gives a lease back; false when it was already returned or reclaimed (nothing to undo then). */
export function returnLease<L extends Lease>(table: LeaseTable<L>, lease: L): boolean {
  if (!lease.held) return false;
  lease.held = false;
  table.held.delete(lease);
  return true;
}

/** Moves a held lease's deadline later (a streaming body that is still moving). */
export function extendLease(lease: Lease, expiresAtMs: number): void {
  if (expiresAtMs > lease.expiresAtMs) lease.expiresAtMs = expiresAtMs;
}

/**
 * Reclaims every lease whose deadline has passed, handing each to `onReclaimed` after the walk.
 * Costs one comparison unless the earliest deadline has passed.
 */
export function reclaimExpired<L extends Lease>(table: LeaseTable<L>, nowMs: number, onReclaimed: (lease: L) => void): void {
  if (nowMs < table.nextExpiryMs) return;
  let next = Infinity;
  const expired: L[] = [];
  for (const lease of table.held) {
    if (lease.expiresAtMs <= nowMs) expired.push(lease);
    else if (lease.expiresAtMs < next) next = lease.expiresAtMs;
  }
  table.nextExpiryMs = next;
  for (const lease of expired) {
    returnLease(table, lease);
    table.reclaimed++;
    onReclaimed(lease);
  }
}
