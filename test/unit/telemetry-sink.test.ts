// The sink's batching and its failure accounting, with fake timers and a store that is plain data
// (the real store and runtime are covered by test/integration/telemetry.test.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RequestRecord } from "../../analytics/request-layout.ts";
import type { AnalyticsRow } from "../../analytics/types.ts";
import { newSinkState, sinkConfig, writeRecord, type TelemetryEnv } from "../../workers/sidecar/telemetry-sink.ts";

const record: RequestRecord = {
  mesh: "m", source: "external", destination: "api", route: "default", subset: "*", endpoint: "a", outcome: "ok", colo: "LCL",
  method: "GET", reason: "", sampleWeight: 1, status: 200, latencyMs: 1, attempts: 1, requestBytes: 0, responseBytes: 2, hedged: false,
};

/** A store whose ingest behaves as told, recording what it received. */
function storeEnv(behaviour: "ok" | "fail" | "stall" | "slow", vars: Partial<TelemetryEnv> = {}) {
  const batches: AnalyticsRow[][] = [];
  const names: string[] = [];
  const store = {
    ingest: async (rows: AnalyticsRow[]) => {
      batches.push(rows);
      if (behaviour === "fail") throw new Error("store exploded");
      if (behaviour === "stall") await new Promise(() => {});
      if (behaviour === "slow") await new Promise((resolve) => setTimeout(resolve, 2000));
      return { stored: rows.length - 1, dropped: 1 };
    },
  };
  const ns = { idFromName: (name: string) => (names.push(name), name), get: () => store };
  const env = { TELEMETRY_STORE: ns as unknown as DurableObjectNamespace, TELEMETRY_BATCH_SIZE: "3", TELEMETRY_FLUSH_MS: "1000", TELEMETRY_FLUSH_TIMEOUT_MS: "5000", TELEMETRY_MAX_BUFFERED: "10", ...vars };
  return { env, batches, names };
}

const background = () => {
  const pending: Promise<unknown>[] = [];
  return { ctx: { waitUntil: (p: Promise<unknown>) => void pending.push(p) }, pending };
};

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("store sink", () => {
  it("sends a batch when it is full, in one call, to the store named by the dataset", async () => {
    const { env, batches, names } = storeEnv("ok");
    const state = newSinkState();
    const config = sinkConfig(env);
    const { ctx } = background();
    for (let i = 0; i < 3; i++) writeRecord(state, config, env, ctx, { ...record, latencyMs: i });
    await vi.advanceTimersByTimeAsync(0);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.map((r) => r.doubles[2])).toEqual([0, 1, 2]);
    expect(batches[0]![0]).toMatchObject({ dataset: "edgemesh_requests", sampleInterval: 1, index1: "api" });
    expect(names).toEqual(["edgemesh_requests"]);
    // The store kept two of the three: the third is counted as refused, not as written.
    expect(state.counters.written).toBe(2);
    expect(state.counters.dropped.storeRefused).toBe(1);
  });

  it("sends what waited by age when traffic stops, never per request", async () => {
    const { env, batches } = storeEnv("ok");
    const state = newSinkState();
    const config = sinkConfig(env);
    const { ctx, pending } = background();
    writeRecord(state, config, env, ctx, record);
    writeRecord(state, config, env, ctx, record);
    await vi.advanceTimersByTimeAsync(999);
    expect(batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(2);
    // Every piece of background work was handed to waitUntil (one timer, one flush).
    expect(pending).toHaveLength(2);
  });

  it("sends rows that waited behind busy flushes once one ends, with no further traffic", async () => {
    const { env, batches } = storeEnv("slow");
    const state = newSinkState();
    const config = sinkConfig(env);
    const { ctx } = background();
    for (let i = 0; i < 7; i++) writeRecord(state, config, env, ctx, record);
    // Two batches in flight (the cap); the seventh row's timer finds no free slot.
    await vi.advanceTimersByTimeAsync(1500);
    expect(batches).toHaveLength(2);
    expect(state.buffer).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(4500);
    expect(batches.map((b) => b.length)).toEqual([3, 3, 1]);
    expect(state.buffer).toHaveLength(0);
  });

  it("counts the rows of a failing store as dropped and keeps going", async () => {
    const { env } = storeEnv("fail");
    const state = newSinkState();
    const config = sinkConfig(env);
    const { ctx } = background();
    for (let i = 0; i < 6; i++) writeRecord(state, config, env, ctx, record);
    await vi.advanceTimersByTimeAsync(0);
    expect(state.counters.dropped.sinkFailed).toBe(6);
    expect(state.counters.failedFlushes).toBe(2);
    expect(state.counters.lastError).toBe("store exploded");
    expect(state.inFlight).toBe(0);
  });

  it("gives up on a stalled store after the timeout, bounds what waits, and drops with a count", async () => {
    const { env, batches } = storeEnv("stall");
    const state = newSinkState();
    const config = sinkConfig(env);
    const { ctx } = background();
    // Two flushes stall (the in-flight cap); the next rows wait in the buffer up to its limit of 10.
    for (let i = 0; i < 20; i++) writeRecord(state, config, env, ctx, record);
    expect(batches).toHaveLength(2);
    expect(state.buffer).toHaveLength(10);
    expect(state.counters.dropped.bufferFull).toBe(4);
    await vi.advanceTimersByTimeAsync(5000);
    expect(state.counters.dropped.sinkTimeout).toBeGreaterThanOrEqual(6);
    expect(state.counters.lastError).toMatch(/did not answer within 5000 ms/);
    // The timed-out flushes freed their slots, so waiting rows moved on.
    expect(batches.length).toBeGreaterThan(2);
  });
});

describe("analytics engine sink", () => {
  it("writes the data point at once, and counts a throwing binding as dropped", () => {
    const points: unknown[] = [];
    const ok = { TELEMETRY: { writeDataPoint: (p: unknown) => void points.push(p) } as unknown as AnalyticsEngineDataset };
    const state = newSinkState();
    writeRecord(state, sinkConfig(ok), ok, background().ctx, record);
    expect(points).toHaveLength(1);
    expect(state.counters.written).toBe(1);

    const broken = { TELEMETRY: { writeDataPoint: () => { throw new Error("limit reached"); } } as unknown as AnalyticsEngineDataset };
    writeRecord(state, sinkConfig(broken), broken, background().ctx, record);
    expect(state.counters.dropped.sinkFailed).toBe(1);
  });

  it("is preferred when both sinks are bound", () => {
    expect(sinkConfig({ TELEMETRY: {} as AnalyticsEngineDataset, TELEMETRY_STORE: {} as DurableObjectNamespace }).kind).toBe("analytics-engine");
    expect(sinkConfig({}).kind).toBe("none");
  });
});
