import { describe, expect, it } from "vitest";
import { extendLease, holdLease, newLeaseTable, reclaimExpired, returnLease, type Lease } from "../../workers/sidecar/lease.ts";

describe("leases", () => {
  it("are reclaimed after their deadline, once, and not before", () => {
    const table = newLeaseTable<Lease>();
    const short = holdLease(table, { expiresAtMs: 100, held: true });
    const long = holdLease(table, { expiresAtMs: 500, held: true });
    const reclaimed: Lease[] = [];
    reclaimExpired(table, 99, (l) => reclaimed.push(l));
    expect(reclaimed).toEqual([]);
    reclaimExpired(table, 100, (l) => reclaimed.push(l));
    expect(reclaimed).toEqual([short]);
    expect(short.held).toBe(false);
    expect(table.nextExpiryMs).toBe(500);
    expect(returnLease(table, short)).toBe(false); // its holder came back late: nothing to undo
    expect(returnLease(table, long)).toBe(true);
    expect(returnLease(table, long)).toBe(false);
    expect(table.held.size).toBe(0);
    expect(table.reclaimed).toBe(1);
  });

  it("move only later when extended, and a sweep that finds nothing due learns the next deadline", () => {
    const table = newLeaseTable<Lease>();
    const lease = holdLease(table, { expiresAtMs: 100, held: true });
    extendLease(lease, 50);
    expect(lease.expiresAtMs).toBe(100);
    extendLease(lease, 300);
    const reclaimed: Lease[] = [];
    reclaimExpired(table, 150, (l) => reclaimed.push(l));
    expect(reclaimed).toEqual([]);
    expect(table.nextExpiryMs).toBe(300);
    reclaimExpired(table, 300, (l) => reclaimed.push(l));
    expect(reclaimed).toEqual([lease]);
  });
});
