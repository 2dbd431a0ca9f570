// The authority's side of the distribution tier: which relays exist, which services each holds,
// and how often they should report. Relays register themselves with their first report and are
// forgotten when they stop reporting (their isolates went idle). In memory: after a restart the
// relays reappear with their next report, and that report's answer repairs anything they missed.

/** Reports per second the authority budgets for all relays together (it sets their interval). */
export const RELAY_REPORT_BUDGET_PER_SECOND = 200;
/** No relay reports more often than this. */
export const MIN_RELAY_REPORT_MS = 1_000;

export interface RelayRecord {
  relayId: string;
  relay: string;
  services: Set<string>;
  lastReportMs: number;
}

export class RelayHub {
  private readonly relays = new Map<string, RelayRecord>();

  /** A relay reported holding (or asking for) `services`. */
  seen(relayId: string, relay: string, services: Iterable<string>, nowMs: number): void {
    this.relays.set(relayId, { relayId, relay, services: new Set(services), lastReportMs: nowMs });
  }

  /** The relay will hold these services once it applies the answer. */
  holds(relayId: string, services: Iterable<string>): void {
    const r = this.relays.get(relayId);
    if (r) for (const s of services) r.services.add(s);
  }

  /**
   * The report interval that keeps every relay's reports together within the budget: relays ×
   * 1000 / budget ms, at least MIN_RELAY_REPORT_MS.
   */
  reportEveryMs(): number {
    return Math.max(MIN_RELAY_REPORT_MS, Math.ceil((this.relays.size * 1000) / RELAY_REPORT_BUDGET_PER_SECOND));
  }

  /** Relays silent for several report intervals have gone idle: no more pushes to them. */
  forgetSilent(nowMs: number): void {
    const allowanceMs = 3 * this.reportEveryMs() + 5_000;
    for (const [id, r] of this.relays) if (nowMs - r.lastReportMs > allowanceMs) this.relays.delete(id);
  }

  /** Per relay, which of `services` it holds: the pushes to make when those services move. */
  holdersOf(services: readonly string[]): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.relays.values()) {
      const mine = services.filter((s) => r.services.has(s));
      if (mine.length > 0) out.set(r.relayId, mine);
    }
    return out;
  }

  all(): RelayRecord[] {
    return [...this.relays.values()];
  }
}
