// The one alarm of MeshControl, shared by every component that has work at a time: each says when
// it is next due (a lapsing lease, an ending ejection, a health-check round) and the alarm is set
// to the earliest, or deleted when none has anything.

export type NextDue = () => number | null;

type AlarmStorage = Pick<DurableObjectStorage, "getAlarm" | "setAlarm" | "deleteAlarm">;

export class AlarmPlanner {
  private readonly sources: { name: string; nextDueMs: NextDue }[] = [];

  constructor(private readonly storage: AlarmStorage) {}

  /** Adds a component's schedule; `name` shows in `due()`. */
  add(name: string, nextDueMs: NextDue): this {
    this.sources.push({ name, nextDueMs });
    return this;
  }

  /** The earliest time any component is due, or null. */
  nextMs(): number | null {
    let next: number | null = null;
    for (const s of this.sources) {
      const at = s.nextDueMs();
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next;
  }

  /** Every component's next due time, for the health status and tests. */
  due(): Record<string, number | null> {
    return Object.fromEntries(this.sources.map((s) => [s.name, s.nextDueMs()]));
  }

  /**
   * Sets the alarm to the earliest due time. With `replace` (from the alarm handler itself) the
   * alarm is set, or deleted when nothing is due; otherwise it only moves earlier.
   */
  async reschedule(replace = false): Promise<void> {
    const next = this.nextMs();
    if (next === null) {
      if (replace) await this.storage.deleteAlarm();
      return;
    }
    const current = replace ? null : await this.storage.getAlarm();
    if (current === null || next < current) await this.storage.setAlarm(next);
  }
}
