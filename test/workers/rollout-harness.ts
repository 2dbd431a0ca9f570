// A test Durable Object that runs the rollout component (durable/rollouts.ts) alone over its own
// SQLite storage, in the real runtime, with a host the test controls: a policy kept here (applied
// with MeshControl's rule: a service whose section changes must pass `refuseChange`), the canary's
// readiness, the measurement every check gets (optionally held until released), and failing
// writes. Time is passed in by the test. test/integration/rollout-component.test.ts drives it.
import { DurableObject } from "cloudflare:workers";
import type { Json } from "../../durable/policy-sections.ts";
import type { RolloutAction } from "../../policies/rollout-run.ts";
import type { CanaryWindow, MeasureAnswer } from "../../durable/rollout-metrics.ts";
import { Rollouts } from "../../durable/rollouts.ts";
import { validatePolicy, type PolicyDocument } from "../../policies/schema.ts";

type JsonObject = { [key: string]: Json };

export class RolloutHarness extends DurableObject {
  private rollouts: Rollouts | undefined;
  private raw: JsonObject | undefined;
  private parsed: PolicyDocument | undefined;
  private version = 0;
  private notReady: string | null = null;
  private measurement: MeasureAnswer = { ok: true, measurement: { requests: 0, successRate: null, p99Ms: null }, source: "local" };
  private held: { promise: Promise<void>; release: () => void } | undefined;
  private failWrites = false;
  private readonly emitted: { type: string; data: any }[] = [];
  private readonly writes: { service: string; author: string; message: string; version: number }[] = [];
  private readonly windows: CanaryWindow[] = [];

  private get component(): Rollouts {
    this.rollouts ??= this.build();
    return this.rollouts;
  }

  private build(): Rollouts {
    return new Rollouts(this.ctx.storage.sql, {
      servicePolicy: (service) => this.parsed?.services[service],
      serviceNames: () => Object.keys(this.parsed?.services ?? {}),
      mesh: () => this.parsed?.mesh,
      canaryNotReady: () => this.notReady,
      measure: async (window) => {
        this.windows.push(window);
        if (this.held) await this.held.promise;
        return this.measurement;
      },
      writeSection: async (service, edit, author, message) => {
        if (this.failWrites) return { ok: false, message: "writes are switched off by the test" };
        const before = this.raw!.services as JsonObject;
        const section = edit(before[service]!);
        if (JSON.stringify(section) === JSON.stringify(before[service])) return { ok: true, version: null };
        const next = { ...this.raw!, services: { ...before, [service]: section } };
        const checked = validatePolicy(next);
        if (!checked.ok) return { ok: false, message: checked.errors.map((e) => `${e.path}: ${e.message}`).join("; ") };
        this.raw = next;
        this.parsed = checked.document;
        this.version++;
        this.writes.push({ service, author, message, version: this.version });
        return { ok: true, version: this.version };
      },
      emit: (type, data) => {
        this.emitted.push({ type, data });
      },
    });
  }

  /**
   * Applies a document as an operator would: refused when it changes what a rollout holds.
   * `unguarded` skips that check, as a policy that comes back from storage another way would.
   */
  async apply(document: JsonObject, nowMs: number, unguarded = false): Promise<{ ok: true; version: number } | { ok: false; errors?: unknown; refused?: string }> {
    const checked = validatePolicy(document);
    if (!checked.ok) return { ok: false, errors: checked.errors };
    const before = (this.raw?.services ?? {}) as JsonObject;
    const after = document.services as JsonObject;
    for (const service of unguarded ? [] : new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (JSON.stringify(before[service]) === JSON.stringify(after[service])) continue;
      const refused = this.component.refuseChange(service, this.parsed?.services[service], checked.document.services[service]);
      if (refused) return { ok: false, refused };
    }
    this.raw = structuredClone(document);
    this.parsed = checked.document;
    this.version++;
    this.component.policyChanged(nowMs);
    return { ok: true, version: this.version };
  }

  /** Builds the component again over the same storage, as a restarted object would. */
  async restart(): Promise<void> {
    this.rollouts = this.build();
  }

  async runDue(nowMs: number): Promise<void> {
    await this.component.runDue(nowMs);
  }

  /** Starts runDue without waiting (a check whose measurement is held), for races. */
  async startRunDue(nowMs: number): Promise<void> {
    this.ctx.waitUntil(this.component.runDue(nowMs));
  }

  async act(service: string, action: RolloutAction, by: string, nowMs: number): Promise<unknown> {
    return this.component.act(service, action, by, nowMs);
  }

  async list(): Promise<unknown> {
    return this.component.list();
  }

  async get(service: string): Promise<any> {
    return this.component.get(service);
  }

  async nextDueMs(): Promise<number | null> {
    return this.component.nextDueMs();
  }

  async setNotReady(reason: string | null): Promise<void> {
    this.notReady = reason;
  }

  async setMeasurement(answer: MeasureAnswer): Promise<void> {
    this.measurement = answer;
  }

  async holdMeasurements(): Promise<void> {
    let release = () => {};
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.held = { promise, release };
  }

  async releaseMeasurements(): Promise<void> {
    this.held?.release();
    this.held = undefined;
  }

  async setFailWrites(fail: boolean): Promise<void> {
    this.failWrites = fail;
  }

  async activeSection(service: string): Promise<unknown> {
    return (this.raw?.services as JsonObject | undefined)?.[service] ?? null;
  }

  async takeEmitted(): Promise<{ type: string; data: any }[]> {
    return this.emitted.splice(0);
  }

  async takeWrites(): Promise<unknown[]> {
    return this.writes.splice(0);
  }

  async takeWindows(): Promise<CanaryWindow[]> {
    return this.windows.splice(0);
  }
}

export default {
  async fetch(): Promise<Response> {
    return new Response("rollout harness: use the RolloutHarness Durable Object", { status: 404 });
  },
} satisfies ExportedHandler;
