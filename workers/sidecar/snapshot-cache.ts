// The sidecar's copy of its service's snapshot. The hot path only reads the module global; it is
// revalidated in the background once older than its TTL, and the last known good one is kept when
// the control plane is slow or down. Only a cold isolate waits, and it tries the Cache API first.
// With the distribution tier (docs/distribution.md) check-ins go to the colo's relay, and the
// isolates of one colo share the last answer through the Cache API for half a TTL, so most
// revalidations cost no call at all.
import { PRESENCE_EVERY_TTLS, snapshotCacheKey } from "../../policies/distribution.ts";
import type { MeshControlRpc, ServiceSnapshot, SnapshotReply } from "../../policies/snapshot.ts";
import { NO_ACCESS_RULES, prepareAccess, type PreparedAccess } from "./access.ts";
import { prepareIdentity, type PreparedIdentity } from "./identity.ts";
import { prepareRoutes, type PreparedRoute } from "./match.ts";
import { prepareRateLimits, type PreparedRateLimits } from "./ratelimit.ts";
import { pendingFailures, restoreOutcomes, takeOutcomes } from "./report.ts";

export interface LoadedSnapshot {
  snapshot: ServiceSnapshot;
  routes: PreparedRoute[];
  /** Zero trust, compiled once per snapshot: who is calling, who may, how often. */
  identity: PreparedIdentity;
  access: PreparedAccess;
  rateLimits: PreparedRateLimits;
  /** Subsets with an origin-URL member: only tries to those carry a forwarded mesh token. */
  urlSubsets: ReadonlySet<string>;
  /** Whether any endpoint is an origin URL (a mirror may send a shadow to one). */
  hasUrlEndpoints: boolean;
  /** Date.now() of the last successful check against the control plane (or the cache load). */
  checkedAtMs: number;
  /** "cache": loaded from the Cache API and not yet confirmed by the control plane. */
  source: "control" | "cache";
}

export interface SnapshotSource {
  meshName: string;
  serviceName: string;
  /** Where check-ins go: the colo's relay with the distribution tier, else MeshControl itself. */
  control: () => MeshControlRpc;
  colo: string;
  /** Used until the first snapshot tells us its own TTL. */
  defaultTtlMs: number;
  /** How long a cold isolate waits for the control plane before giving up. */
  coldTimeoutMs: number;
  /** Isolates of this colo share answers through the Cache API (the distribution tier). */
  shareInColo?: boolean;
}

export interface SnapshotStatus {
  loaded: LoadedSnapshot | undefined;
  isolateId: string;
  revalidations: number;
  /** Revalidations answered by the colo's shared copy instead of a call. */
  sharedAnswers: number;
  /** Calls made to the control plane (or relay). */
  checkIns: number;
  failures: number;
  lastError: string | undefined;
  lastErrorAtMs: number | undefined;
}

const state: SnapshotStatus & {
  revalidatingSinceMs: number;
  lastCheckInMs: number;
  /** The generation and epoch this isolate told the control plane it serves. */
  reported: string;
  coldLoad: Promise<LoadedSnapshot | undefined> | undefined;
} = {
  loaded: undefined,
  isolateId: "",
  revalidations: 0,
  sharedAnswers: 0,
  checkIns: 0,
  failures: 0,
  lastError: undefined,
  lastErrorAtMs: undefined,
  revalidatingSinceMs: 0,
  lastCheckInMs: 0,
  reported: "",
  coldLoad: undefined,
};

export function snapshotStatus(): Readonly<SnapshotStatus> {
  return state;
}

function isolateId(): string {
  // Random values cannot be generated at module scope in workerd, so this is lazy.
  if (!state.isolateId) state.isolateId = crypto.randomUUID();
  return state.isolateId;
}

const servedMark = (s: ServiceSnapshot | undefined) => (s ? `${s.epoch}/${s.generation}` : "");

/**
 * Makes `snapshot` the one this isolate serves, unless it already serves a later generation of the
 * same epoch (a call that stalled may answer after a newer one). A snapshot of another epoch comes
 * from a control plane whose storage was reset: its generations start again, so it is taken.
 * Returns what is served now.
 */
function install(snapshot: ServiceSnapshot, source: LoadedSnapshot["source"], nowMs: number): LoadedSnapshot {
  const served = state.loaded?.snapshot;
  if (served && served.epoch === snapshot.epoch && served.generation > snapshot.generation) return state.loaded!;
  if (served && served.epoch === snapshot.epoch && served.generation === snapshot.generation) {
    state.loaded!.checkedAtMs = nowMs;
    if (source === "control") state.loaded!.source = "control";
    return state.loaded!;
  }
  const loaded: LoadedSnapshot = {
    snapshot,
    routes: prepareRoutes(snapshot.routes),
    // Snapshots cached by a control plane older than access policy have neither field.
    identity: prepareIdentity(snapshot),
    access: snapshot.access ? prepareAccess(snapshot.access) : NO_ACCESS_RULES,
    rateLimits: prepareRateLimits(snapshot.rateLimits ?? [], snapshot.routes.map((r) => r.name)),
    urlSubsets: new Set(Object.entries(snapshot.subsets).filter(([, members]) => members.some((i) => snapshot.endpoints[i]?.url !== undefined)).map(([name]) => name)),
    hasUrlEndpoints: snapshot.endpoints.some((e) => e.url !== undefined),
    checkedAtMs: nowMs,
    source,
  };
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
  state.checkIns++;
  state.lastCheckInMs = Date.now();
  try {
    const reply = await withTimeout(
      src.control().snapshot({
        service: src.serviceName,
        mesh: src.meshName,
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
    state.reported = servedMark(known);
    return reply;
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

/**
 * The colo's copy of the snapshot: kept 24 hours for cold isolates, and stamped with when a
 * control-plane answer last confirmed it, so while that is recent it answers for the others.
 */
async function saveToCache(src: SnapshotSource, snapshot: ServiceSnapshot, confirmedAtMs: number): Promise<void> {
  try {
    await caches.default.put(
      snapshotCacheKey(src.meshName, src.serviceName),
      new Response(JSON.stringify(snapshot), {
        headers: {
          "content-type": "application/json",
          "cache-control": "max-age=86400",
          "x-edgemesh-epoch": snapshot.epoch,
          "x-edgemesh-generation": String(snapshot.generation),
          "x-edgemesh-confirmed-at": String(confirmedAtMs),
        },
      }),
    );
  } catch (err) {
    remember(err);
  }
}

interface CachedCopy {
  epoch: string;
  generation: number;
  confirmedAtMs: number;
  body: () => Promise<ServiceSnapshot>;
}

async function readCache(src: SnapshotSource): Promise<CachedCopy | undefined> {
  const cached = await caches.default.match(snapshotCacheKey(src.meshName, src.serviceName));
  if (!cached) return undefined;
  return {
    epoch: cached.headers.get("x-edgemesh-epoch") ?? "",
    generation: Number(cached.headers.get("x-edgemesh-generation") ?? 0),
    confirmedAtMs: Number(cached.headers.get("x-edgemesh-confirmed-at") ?? 0),
    body: () => cached.json() as Promise<ServiceSnapshot>,
  };
}

/** The shared copy answers for this colo's isolates for half a TTL after a control-plane answer. */
const sharedFor = (ttlMs: number) => ttlMs / 2;

/**
 * Whether this revalidation must reach the control plane even when the colo's shared answer is
 * fresh: failures to report (passive health), a snapshot installed since the last check-in (sync
 * status shows it), or no check-in for PRESENCE_EVERY_TTLS.
 */
function mustCheckIn(nowMs: number, ttlMs: number): boolean {
  return pendingFailures() > 0 || state.reported !== servedMark(state.loaded?.snapshot) || nowMs - state.lastCheckInMs >= PRESENCE_EVERY_TTLS * ttlMs;
}

/** Answers from the colo's shared copy when it is fresh; true when it did. */
async function answerFromColo(src: SnapshotSource, ttlMs: number): Promise<boolean> {
  const copy = await readCache(src);
  const now = Date.now();
  if (!copy || now - copy.confirmedAtMs >= sharedFor(ttlMs)) return false;
  const served = state.loaded?.snapshot;
  if (served && copy.epoch === served.epoch && copy.generation <= served.generation) {
    state.loaded!.checkedAtMs = now;
    state.loaded!.source = "control";
  } else {
    install(await copy.body(), "control", now);
  }
  state.sharedAnswers++;
  return true;
}

async function revalidate(src: SnapshotSource, waitUntil: (p: Promise<unknown>) => void): Promise<void> {
  state.revalidations++;
  try {
    const ttlMs = state.loaded?.snapshot.snapshotTtlMs || src.defaultTtlMs;
    if (src.shareInColo && !mustCheckIn(Date.now(), ttlMs) && (await answerFromColo(src, ttlMs).catch(() => false))) return;
    const reply = await askControl(src, Math.max(src.defaultTtlMs, 2_000));
    const now = Date.now();
    if (reply.status === "ok") {
      const loaded = install(reply.snapshot, "control", now);
      if (loaded.snapshot === reply.snapshot || src.shareInColo) waitUntil(saveToCache(src, loaded.snapshot, now));
    } else if (reply.status === "not-modified" && state.loaded) {
      state.loaded.checkedAtMs = now;
      // A snapshot from the cache that the control plane confirms as current counts as its own.
      state.loaded.source = "control";
      if (src.shareInColo) waitUntil(saveToCache(src, state.loaded.snapshot, now));
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
  // Single flight: however many requests a cold isolate gets at once, it loads once.
  state.coldLoad ??= coldLoad(src, waitUntil).finally(() => (state.coldLoad = undefined));
  return state.coldLoad;
}

async function coldLoad(src: SnapshotSource, waitUntil: (p: Promise<unknown>) => void): Promise<LoadedSnapshot | undefined> {
  try {
    const copy = await readCache(src);
    if (copy) {
      const snapshot = await copy.body();
      // A copy a control-plane answer confirmed moments ago is as good as one; an older one is
      // served now while the control plane is asked straight away in the background.
      const fresh = src.shareInColo === true && Date.now() - copy.confirmedAtMs < sharedFor(snapshot.snapshotTtlMs || src.defaultTtlMs);
      const loaded = state.loaded ?? install(snapshot, fresh ? "control" : "cache", fresh ? Date.now() : 0);
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
      const now = Date.now();
      const loaded = install(reply.snapshot, "control", now);
      if (loaded.snapshot === reply.snapshot) waitUntil(saveToCache(src, reply.snapshot, now));
      return loaded;
    }
    if (reply.status === "unknown-service") remember(unknownService(src, reply.services));
  } catch (err) {
    remember(err);
  }
  return state.loaded;
}
