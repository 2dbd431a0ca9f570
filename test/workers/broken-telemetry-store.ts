// A telemetry store that misbehaves, for the test that a bad sink never costs a request. Bound to
// sidecars as TELEMETRY_STORE in place of the real TelemetryStore. MODE (a var of the Worker that
// exports it): "fail" throws from every ingest; "stall" does not answer for two minutes.
import { DurableObject } from "cloudflare:workers";

interface Env {
  MODE?: string;
}

export class BrokenTelemetryStore extends DurableObject<Env> {
  ingested = 0;

  async ingest(rows: unknown[]): Promise<never> {
    this.ingested += rows.length;
    // A pending timer, not a promise that can never settle: workerd would cut the latter short as
    // hung, which is a failure, not a stall.
    if (this.env.MODE === "stall") await new Promise((resolve) => setTimeout(resolve, 120_000));
    throw new Error(`telemetry store refuses ${rows.length} rows (test store, mode ${this.env.MODE ?? "fail"})`);
  }

  /** How many rows sidecars tried to hand over. */
  async attempts(): Promise<number> {
    return this.ingested;
  }
}

export default {
  async fetch(): Promise<Response> {
    return new Response("broken telemetry store\n");
  },
} satisfies ExportedHandler<Env>;
