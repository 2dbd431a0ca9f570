// The sidecar's copy of its service's snapshot. The hot path only reads the module global; it is
// revalidated in the background once older than its TTL, and the last known good one is kept when
// the control plane is slow or down. Only a cold isolate waits, and it tries the Cache API first.
import type { MeshControlRpc, ServiceSnapshot, SnapshotReply } from "../../policies/snapshot.ts";
import { prepareRoutes, type PreparedRoute } from "./match.ts";
import { restoreOutcomes, takeOutcomes } from "./report.ts";

export interface LoadedSnapshot {
  snapshot: ServiceSnapshot;
  routes: PreparedRoute[];
  /** Date.now() of the last successful check against the control plane (or the cache load). */
  checkedAtMs: number;
  /** "cache": loaded from the Cache API and not yet confirmed by the control plane. */
  source: "control" | "cache";
}

export interface SnapshotSource {
  meshName: string;
  serviceName: string;
  control: () => MeshControlRpc;
  colo: string;
  /** Used until the first snapshot tells us its own TTL. */
  defaultTtlMs: number;
  /** How long a cold isolate waits for the control plane before giving up. */
  coldTimeoutMs: number;
}

export interface SnapshotStatus {
  loaded: LoadedSnapshot | undefined;
  isolateId: string;
  revalidations: number;
  failures: number;
  lastError: string | undefined;
  lastErrorAtMs: number | undefined;
}

const state: SnapshotStatus & { revalidatingSinceMs: number } = {
  loaded: undefined,
  isolateId: "",
  revalidations: 0,
  failures: 0,
  lastError: undefined,
  lastErrorAtMs: undefined,
  revalidatingSinceMs: 0,
};

export function snapshotStatus(): Readonly<SnapshotStatus> {
  return state;
}

function isolateId(): string {
  // Random values cannot be generated at module scope in workerd, so this is lazy.
  if (!state.isolateId) state.isolateId = crypto.randomUUID();
  return state.isolateId;
}

function cacheKey(src: SnapshotSource): string {
  return `https://snapshot.edgemesh.internal/${encodeURIComponent(src.meshName)}/${encodeURIComponent(src.serviceName)}`;
}

/**
 * Makes `snapshot` the one this isolate serves, unless it already serves a later generation of the
 * same epoch (a call that stalled may answer after a newer one). A snapshot of another epoch comes
 * from a control plane whose storage was reset: its generations start again, so it is taken.
 * Returns what is served now.
 */
function install(snapshot: ServiceSnapshot, source: LoadedSnapshot["source"], nowMs: number): LoadedSnapshot {
  const served = state.loaded?.snapshot;
  if (served && served.epoch === snapshot.epoch && served.generation > snapshot.generation) return state.loaded!;
  const loaded: LoadedSnapshot = { snapshot, routes: prepareRoutes(snapshot.routes), checkedAtMs: nowMs, source };
  state.loaded = loaded;
  return loaded;
}

/** The control plane did not answer in time; unlike a failed call, it may still land. */
class ControlTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ControlTimeout(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One check-in: asks for a newer snapshot and hands over the passive health counts since the last. */
async function askControl(src: SnapshotSource, timeoutMs: number): Promise<SnapshotReply> {
  const known = state.loaded?.snapshot;
  const outcomes = takeOutcomes();
  try {
    return await withTimeout(
      src.control().snapshot({
        service: src.serviceName,
        isolateId: isolateId(),
        colo: src.colo,
        knownGeneration: known?.generation ?? 0,
        knownPolicyVersion: known?.policyVersion ?? 0,
        knownEpoch: known?.epoch ?? "",
        ...(outcomes.length > 0 ? { outcomes } : {}),
      }),
      timeoutMs,
      "control plane snapshot call",
    );
  } catch (err) {
    // A call that failed outright delivered nothing: carry the counts to the next check-in. A call
    // that only timed out may still land, so its counts are dropped rather than counted twice.
    if (!(err instanceof ControlTimeout)) restoreOutcomes(outcomes);
    throw err;
  }
}

function unknownService(src: SnapshotSource, known: string[]): Error {
  return new Error(`the control plane has no service "${src.serviceName}" (known: ${known.join(", ") || "none"})`);
}

function remember(error: unknown): void {
  state.failures++;
  state.lastError = error instanceof Error ? error.message : String(error);
  state.lastErrorAtMs = Date.now();
}

async function saveToCache(src: SnapshotSource, snapshot: ServiceSnapshot): Promise<void> {
  try {
    await caches.default.put(
      cacheKey(src),
      new Response(JSON.stringify(snapshot), {
        headers: { "content-type": "application/json", "cache-control": "max-age=86400" },
      }),
    );
  } catch (err) {
    remember(err);
  }
}

async function revalidate(src: SnapshotSource, waitUntil: (p: Promise<unknown>) => void): Promise<void> {
  state.revalidations++;
  try {
    const reply = await askControl(src, Math.max(src.defaultTtlMs, 2_000));
    const now = Date.now();
    if (reply.status === "ok") {
      if (install(reply.snapshot, "control", now).snapshot === reply.snapshot) waitUntil(saveToCache(src, reply.snapshot));
    } else if (reply.status === "not-modified" && state.loaded) {
      state.loaded.checkedAtMs = now;
      // A snapshot from the cache that the control plane confirms as current counts as its own.
      state.loaded.source = "control";
    } else if (reply.status === "unknown-service") {
      throw unknownService(src, reply.services);
    }
  } catch (err) {
    remember(err);
    // Keep serving the last known good snapshot; try again after another TTL.
    if (state.loaded) state.loaded.checkedAtMs = Date.now();
  } finally {
    state.revalidatingSinceMs = 0;
  }
}

/**
 * Returns the snapshot to serve this request with. Never waits on the control plane when the
 * isolate has a snapshot; starts a background revalidation when it is older than its TTL.
 */
export async function currentSnapshot(
  src: SnapshotSource,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<LoadedSnapshot | undefined> {
  const now = Date.now();
  const loaded = state.loaded;
  if (loaded) {
    const ttl = loaded.snapshot.snapshotTtlMs || src.defaultTtlMs;
    // A revalidation stuck longer than the cold timeout is presumed lost and may be retried.
    if (now - loaded.checkedAtMs >= ttl && (state.revalidatingSinceMs === 0 || now - state.revalidatingSinceMs > src.coldTimeoutMs)) {
      state.revalidatingSinceMs = now;
      waitUntil(revalidate(src, waitUntil));
    }
    return loaded;
  }
  return coldLoad(src, waitUntil);
}

async function coldLoad(src: SnapshotSource, waitUntil: (p: Promise<unknown>) => void): Promise<LoadedSnapshot | undefined> {
  try {
    const cached = await caches.default.match(cacheKey(src));
    if (cached) {
      const snapshot = (await cached.json()) as ServiceSnapshot;
      // Serve from the cache now, but ask the control plane straight away in the background.
      const loaded = state.loaded ?? install(snapshot, "cache", 0);
      if (loaded.source === "cache" && state.revalidatingSinceMs === 0) {
        state.revalidatingSinceMs = Date.now();
        waitUntil(revalidate(src, waitUntil));
      }
      return loaded;
    }
  } catch (err) {
    remember(err);
  }
  try {
    const reply = await askControl(src, src.coldTimeoutMs);
    if (reply.status === "ok") {
      const loaded = install(reply.snapshot, "control", Date.now());
      if (loaded.snapshot === reply.snapshot) waitUntil(saveToCache(src, reply.snapshot));
      return loaded;
    }
    if (reply.status === "unknown-service") remember(unknownService(src, reply.services));
  } catch (err) {
    remember(err);
  }
  return state.loaded;
}
