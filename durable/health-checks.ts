// When active health checks are due. Each service with a healthCheck is checked every
// intervalMs; a round queues every endpoint of the service. Rounds wait in a backlog and are
// handed out in batches no bigger than one alarm may run; a service whose round is still in the
// backlog is not queued again until it is done. In memory: after a restart every check is due.

export interface DueCheck {
  service: string;
  endpointId: string;
}

export interface CheckedService {
  service: string;
  intervalMs: number;
  endpointIds: readonly string[];
}

export class HealthCheckScheduler {
  private readonly nextCheckAtMs = new Map<string, number>();
  private backlog: DueCheck[] = [];

  /** Queues the rounds that are due and hands out at most `max` checks, oldest first. */
  takeDue(nowMs: number, services: Iterable<CheckedService>, max: number): DueCheck[] {
    const checked = new Set<string>();
    const queued = new Set(this.backlog.map((c) => c.service));
    for (const s of services) {
      checked.add(s.service);
      if (queued.has(s.service)) continue;
      if ((this.nextCheckAtMs.get(s.service) ?? 0) > nowMs) continue;
      this.nextCheckAtMs.set(s.service, nowMs + s.intervalMs);
      for (const endpointId of s.endpointIds) this.backlog.push({ service: s.service, endpointId });
    }
    // Services that lost their checks (or left the mesh) stop being scheduled.
    for (const service of this.nextCheckAtMs.keys()) if (!checked.has(service)) this.nextCheckAtMs.delete(service);
    this.backlog = this.backlog.filter((c) => checked.has(c.service));
    return this.backlog.splice(0, max);
  }

  /** Checks still waiting for an alarm. */
  pending(): number {
    return this.backlog.length;
  }

  /** When the next round is due: now for a service never checked. */
  nextDueMs(services: Iterable<CheckedService>, nowMs: number): number | null {
    let next: number | null = null;
    for (const s of services) {
      const at = this.nextCheckAtMs.get(s.service) ?? nowMs;
      if (next === null || at < next) next = at;
    }
    return next;
  }
}
