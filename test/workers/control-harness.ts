// A test Durable Object that runs MeshControl's components alone over its own SQLite storage, in
// the real runtime: the component tests (test/integration/control-components-*.test.ts) call
// `invoke(component, method, args)` on a fresh object per test and get plain data back. Time is
// always passed in by the test, never read from the clock. `restart()` builds the components
// again over the same storage, as after an eviction; `rowsRead()` tells how many rows SQL read
// since the last call (to prove a query uses an index).
import { DurableObject } from "cloudflare:workers";
import { AlarmPlanner } from "../../durable/alarm-planner.ts";
import { ActivePolicy } from "../../durable/active-policy.ts";
import { EventLog } from "../../durable/event-log.ts";
import { HealthMonitor } from "../../durable/health-monitor.ts";
import { PolicyStore } from "../../durable/policy-store.ts";
import { Registry } from "../../durable/registry.ts";
import { SnapshotServer } from "../../durable/snapshot-server.ts";
import { MetaTable } from "../../durable/sql.ts";
import { validatePolicy } from "../../policies/schema.ts";

export interface HarnessOptions {
  healthHistoryLimit?: number;
  eventLogLimit?: number;
}

type Components = {
  meta: MetaTable;
  events: EventLog;
  store: PolicyStore;
  registry: Registry;
  health: HealthMonitor;
  policy: ActivePolicy;
  snapshots: SnapshotServer;
  alarms: AlarmPlanner;
};

export class ControlHarness extends DurableObject {
  private components: Components | undefined;
  private options: HarnessOptions = {};
  private readonly cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  /** What the components emitted through their callbacks, oldest first. */
  private readonly emitted: unknown[] = [];
  private excludedIds = new Set<string>();

  /** SqlStorage that remembers its cursors, so rowsRead() can sum what each query read. */
  private countingSql(): SqlStorage {
    const sql = this.ctx.storage.sql;
    const cursors = this.cursors;
    return new Proxy(sql, {
      get(target, prop) {
        if (prop === "exec") {
          return (query: string, ...bindings: unknown[]) => {
            const cursor = target.exec(query, ...(bindings as SqlStorageValue[]));
            cursors.push(cursor as never);
            return cursor;
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  private build(): Components {
    const sql = this.countingSql();
    const meta = new MetaTable(sql);
    const registry = new Registry(sql);
    const policy = new ActivePolicy((s) => registry.ofService(s), () => [...new Set(registry.all().map((i) => i.service))]);
    const c: Components = {
      meta,
      events: new EventLog(sql, this.ctx, this.options.eventLogLimit),
      store: new PolicyStore(sql, meta),
      registry,
      health: new HealthMonitor(sql, (t, atMs) => this.emitted.push({ ...t, atMs }), this.options.healthHistoryLimit),
      policy,
      snapshots: undefined as unknown as SnapshotServer,
      alarms: new AlarmPlanner(this.ctx.storage),
    };
    c.snapshots = new SnapshotServer(
      sql,
      meta,
      {
        policyVersion: () => policy.version,
        compiled: (s) => policy.compiled(s),
        serviceNames: () => policy.serviceNames(),
        isExcluded: (s, id) => this.excludedIds.has(`${s}/${id}`),
        ttlMs: () => 1_000,
      },
      0,
    );
    return c;
  }

  async setup(options: HarnessOptions = {}): Promise<void> {
    this.options = options;
    this.components = this.build();
  }

  /** Builds every component again over the same storage, as a restarted object would. */
  async restart(): Promise<void> {
    this.components = this.build();
  }

  async invoke(component: keyof Components, method: string, args: unknown[] = []): Promise<unknown> {
    this.components ??= this.build();
    const target = this.components[component] as unknown as Record<string, (...a: unknown[]) => unknown>;
    const fn = target[method];
    if (typeof fn !== "function") throw new Error(`${component} has no method ${method}`);
    const result = await fn.apply(target, args);
    // Maps and Sets do not survive JSON; the tests compare plain data.
    return JSON.parse(JSON.stringify(result ?? null, (_, v) => (v instanceof Set ? [...v] : v instanceof Map ? Object.fromEntries(v) : v)));
  }

  /** Runs `invoke` inside one storage transaction, as MeshControl's commit does. */
  async invokeInTransaction(component: keyof Components, method: string, args: unknown[] = []): Promise<unknown> {
    this.components ??= this.build();
    const target = this.components[component] as unknown as Record<string, (...a: unknown[]) => unknown>;
    const result = this.ctx.storage.transactionSync(() => target[method]!.apply(target, args));
    return JSON.parse(JSON.stringify(result ?? null));
  }

  /** Activates a policy document (validated here) as `version` in the ActivePolicy component. */
  async activate(version: number, document: unknown): Promise<{ ok: boolean; errors?: unknown }> {
    this.components ??= this.build();
    const checked = validatePolicy(document);
    if (!checked.ok) return { ok: false, errors: checked.errors };
    this.components.policy.activate(version, checked.document);
    return { ok: true };
  }

  async exclude(ids: string[]): Promise<void> {
    this.excludedIds = new Set(ids);
  }

  /** Rows read by every query since the last call. */
  async rowsRead(): Promise<number> {
    const n = this.cursors.reduce((sum, c) => sum + c.rowsRead, 0);
    this.cursors.length = 0;
    return n;
  }

  async takeEmitted(): Promise<unknown[]> {
    return this.emitted.splice(0);
  }

  /** Plans the alarm with components due at `dues` (null: nothing due), as MeshControl does. */
  async planAlarm(dues: (number | null)[], replace: boolean): Promise<number | null> {
    const planner = new AlarmPlanner(this.ctx.storage);
    dues.forEach((at, i) => planner.add(`c${i}`, () => at));
    await planner.reschedule(replace);
    return this.ctx.storage.getAlarm();
  }

  async alarmAt(): Promise<number | null> {
    return this.ctx.storage.getAlarm();
  }

  async sql(query: string, ...bindings: SqlStorageValue[]): Promise<unknown[]> {
    return this.ctx.storage.sql.exec(query, ...bindings).toArray();
  }

  override async alarm(): Promise<void> {
    // The harness never relies on its alarm firing; tests only read when it is set.
  }
}

export default {
  async fetch(): Promise<Response> {
    return new Response("control harness: use the ControlHarness Durable Object", { status: 404 });
  },
} satisfies ExportedHandler;
