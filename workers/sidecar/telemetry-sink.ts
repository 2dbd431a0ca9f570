// Where request records go. In production: the Workers Analytics Engine binding (`TELEMETRY`),
// whose writeDataPoint returns at once and stores in the background. Locally Analytics Engine
// stores nothing, so `npm start` binds the telemetry store Durable Object (`TELEMETRY_STORE`)
// instead. The sidecar never calls it per request: rows wait in a per-isolate buffer and go in one
// RPC when the buffer holds a batch or its oldest row is old enough, in the background
// (ctx.waitUntil). A failing, slow or stalled sink costs rows, counted here, never a request.
import type { AnalyticsRow, DataPoint } from "../../analytics/types.ts";
import type { TelemetryStoreRpc } from "../../analytics/store-rpc.ts";
import { REQUESTS_DATASET, toDataPoint, type RequestRecord } from "../../analytics/request-layout.ts";

export interface TelemetryEnv {
  /** Analytics Engine dataset binding (production). */
  TELEMETRY?: AnalyticsEngineDataset;
  /** The local telemetry store (`npm start`, tests): used when there is no Analytics Engine binding. */
  TELEMETRY_STORE?: DurableObjectNamespace;
  /** Dataset name of rows sent to the store (Analytics Engine's binding knows its own). */
  TELEMETRY_DATASET?: string;
  /** Rows per store RPC (default 100). */
  TELEMETRY_BATCH_SIZE?: string;
  /** Longest a row waits in the buffer before a flush (ms, default 1000). */
  TELEMETRY_FLUSH_MS?: string;
  /** A flush unanswered by then counts as failed and its rows as dropped (ms, default 5000). */
  TELEMETRY_FLUSH_TIMEOUT_MS?: string;
  /** Rows the buffer holds at most; more are dropped (default 5000). */
  TELEMETRY_MAX_BUFFERED?: string;
}

export interface SinkConfig {
  kind: "analytics-engine" | "store" | "none";
  dataset: string;
  batchSize: number;
  flushMs: number;
  flushTimeoutMs: number;
  maxBuffered: number;
  /** Flushes that may wait for the store at once; more rows wait in the buffer. */
  maxInFlight: number;
}

export function sinkConfig(env: TelemetryEnv): SinkConfig {
  const num = (raw: string | undefined, fallback: number, min: number) => {
    const n = Number(raw);
    return raw !== undefined && Number.isFinite(n) && n >= min ? Math.floor(n) : fallback;
  };
  return {
    kind: env.TELEMETRY ? "analytics-engine" : env.TELEMETRY_STORE ? "store" : "none",
    dataset: env.TELEMETRY_DATASET || REQUESTS_DATASET,
    batchSize: num(env.TELEMETRY_BATCH_SIZE, 100, 1),
    flushMs: num(env.TELEMETRY_FLUSH_MS, 1000, 1),
    flushTimeoutMs: num(env.TELEMETRY_FLUSH_TIMEOUT_MS, 5000, 1),
    maxBuffered: num(env.TELEMETRY_MAX_BUFFERED, 5000, 1),
    maxInFlight: 2,
  };
}

/** Counters of this isolate, shown by the sidecar's telemetry debug view (SidecarControl.debugView). */
export interface SinkCounters {
  /** Requests recorded (sampled in). */
  recorded: number;
  /** Requests the sampling left out. */
  sampledOut: number;
  /** Rows handed to Analytics Engine or stored by the store. */
  written: number;
  /** Rows lost, by why (storeRefused: the store answered but did not keep them, e.g. past its limits). */
  dropped: { bufferFull: number; sinkFailed: number; sinkTimeout: number; noSink: number; storeRefused: number };
  flushes: number;
  failedFlushes: number;
  lastError: string;
  lastErrorAtMs: number;
}

export interface SinkState {
  counters: SinkCounters;
  buffer: AnalyticsRow[];
  inFlight: number;
  flushScheduled: boolean;
}

export function newSinkState(): SinkState {
  return {
    counters: { recorded: 0, sampledOut: 0, written: 0, dropped: { bufferFull: 0, sinkFailed: 0, sinkTimeout: 0, noSink: 0, storeRefused: 0 }, flushes: 0, failedFlushes: 0, lastError: "", lastErrorAtMs: 0 },
    buffer: [],
    inFlight: 0,
    flushScheduled: false,
  };
}

/** The request whose invocation carries background work (its ctx). */
export type Background = Pick<ExecutionContext, "waitUntil">;

function failed(state: SinkState, err: unknown, nowMs: number): void {
  state.counters.lastError = err instanceof Error ? err.message : String(err);
  state.counters.lastErrorAtMs = nowMs;
}

/** Hands one record to the sink. Never throws, never waits. */
export function writeRecord(state: SinkState, config: SinkConfig, env: TelemetryEnv, ctx: Background, record: RequestRecord): void {
  state.counters.recorded++;
  if (config.kind === "analytics-engine") {
    try {
      env.TELEMETRY!.writeDataPoint(toDataPoint(record));
      state.counters.written++;
    } catch (err) {
      state.counters.dropped.sinkFailed++;
      failed(state, err, Date.now());
    }
    return;
  }
  if (config.kind === "none") {
    state.counters.dropped.noSink++;
    return;
  }
  if (state.buffer.length >= config.maxBuffered) {
    state.counters.dropped.bufferFull++;
    return;
  }
  state.buffer.push(rowOf(toDataPoint(record), config.dataset, Date.now(), 1));
  if (state.buffer.length >= config.batchSize) flush(state, config, env, ctx);
  else if (!state.flushScheduled) {
    // The request that buffers the first row keeps its invocation alive until the row is sent,
    // so rows are flushed by age even when traffic stops.
    state.flushScheduled = true;
    ctx.waitUntil(
      new Promise<void>((resolve) =>
        setTimeout(() => {
          state.flushScheduled = false;
          flush(state, config, env, ctx);
          resolve();
        }, config.flushMs),
      ),
    );
  }
}

/** The stored row of a data point: what Analytics Engine would keep. */
export function rowOf(point: DataPoint, dataset: string, timestampMs: number, sampleInterval: number): AnalyticsRow {
  return { dataset, timestampMs, sampleInterval, index1: point.indexes[0], blobs: point.blobs, doubles: point.doubles };
}

/** Sends up to a batch of buffered rows to the store in the background, unless enough flushes already wait. */
export function flush(state: SinkState, config: SinkConfig, env: TelemetryEnv, ctx: Background): void {
  if (state.buffer.length === 0 || state.inFlight >= config.maxInFlight) return;
  const batch = state.buffer.length <= config.batchSize ? state.buffer : state.buffer.slice(0, config.batchSize);
  state.buffer = batch === state.buffer ? [] : state.buffer.slice(config.batchSize);
  state.inFlight++;
  state.counters.flushes++;
  let settled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settle = (outcome: "ok" | "failed" | "timeout", err?: unknown, stored = 0) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    state.inFlight--;
    if (outcome === "ok") {
      state.counters.written += stored;
      state.counters.dropped.storeRefused += batch.length - stored;
    } else {
      state.counters.failedFlushes++;
      if (outcome === "timeout") state.counters.dropped.sinkTimeout += batch.length;
      else state.counters.dropped.sinkFailed += batch.length;
      failed(state, err, Date.now());
    }
    // Rows that waited behind this flush go now rather than at the next request: a full batch,
    // or what is left when no timer will come for it (traffic may have stopped).
    if (state.buffer.length >= config.batchSize || (state.buffer.length > 0 && !state.flushScheduled)) flush(state, config, env, ctx);
  };
  const sent = (async () => {
    const ns = env.TELEMETRY_STORE!;
    // A stub is made inside the request that uses it, never kept across requests.
    const store = ns.get(ns.idFromName(config.dataset)) as unknown as Pick<TelemetryStoreRpc, "ingest">;
    return (await store.ingest(batch)).stored;
  })();
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      settle("timeout", new Error(`the telemetry store did not answer within ${config.flushTimeoutMs} ms`));
      resolve();
    }, config.flushTimeoutMs);
  });
  ctx.waitUntil(Promise.race([sent.then((stored) => settle("ok", undefined, stored), (err: unknown) => settle("failed", err)), timedOut]));
}

/** What the telemetry debug view shows. */
export function sinkStatus(state: SinkState, config: SinkConfig | undefined): Record<string, unknown> {
  return {
    sink: config?.kind ?? "not configured yet (no request seen)",
    dataset: config?.dataset,
    ...state.counters,
    buffered: state.buffer.length,
    inFlight: state.inFlight,
    ...(config?.kind === "store" ? { batchSize: config.batchSize, flushMs: config.flushMs, flushTimeoutMs: config.flushTimeoutMs, maxBuffered: config.maxBuffered } : {}),
  };
}
