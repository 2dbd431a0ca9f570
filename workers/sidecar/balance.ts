// Endpoint selection within a subset: peak-EWMA power of two choices (default), least-request P2C,
// round robin, weighted random and Maglev consistent hashing, with locality preference and a
// panic threshold. Per-isolate state (outstanding requests, latency estimates, counters, compiled
// tables) is plain data in module globals. Small tables are keyed by the snapshot's member arrays,
// so old ones are collected with their snapshot; Maglev tables (65k slots) are keyed by the member
// endpoint ids, so a new snapshot with the same members reuses its table, and only a few are kept.
import type { CompiledEndpoint, CompiledLoadBalancer } from "../../policies/snapshot.ts";
import { extendLease, holdLease, newLeaseTable, reclaimExpired, returnLease, type Lease } from "./lease.ts";
import { buildMaglevTable, maglevSlot } from "./maglev.ts";

/** Load of one endpoint as this isolate sees it. */
export interface EndpointLoad {
  /** Peak-EWMA latency estimate (ms) as of `sampledAtMs`. */
  ewmaMs: number;
  sampledAtMs: number;
  /** Tries in flight, answered ones included until their response body ends. */
  outstanding: number;
  /** Tries sent since the isolate started, and when the last one was: for the debug endpoint. */
  tries: number;
  lastTryAtMs: number;
}

const loads = new Map<string, EndpointLoad>();

export function loadOf(endpointId: string): EndpointLoad {
  let load = loads.get(endpointId);
  if (!load) {
    load = { ewmaMs: 0, sampledAtMs: 0, outstanding: 0, tries: 0, lastTryAtMs: 0 };
    loads.set(endpointId, load);
  }
  return load;
}

export function allLoads(): ReadonlyMap<string, EndpointLoad> {
  return loads;
}

/**
 * Forgets the load of endpoints that left the service (a new snapshot), so the map does not grow
 * with every endpoint ever seen. One with a try still in flight is kept until a later snapshot.
 */
export function retainLoads(ids: ReadonlySet<string>): void {
  for (const [id, load] of loads) if (!ids.has(id) && load.outstanding === 0) loads.delete(id);
}

/** A try in flight: counted in its endpoint's `outstanding` until finished, or reclaimed after its deadline. */
export interface TryLease extends Lease {
  load: EndpointLoad;
}

// Every try in flight in this isolate. A try whose request vanished (workerd may drop a disconnected
// request's continuations, so `tryFinished` never runs) is reclaimed here after its deadline.
const inFlight = newLeaseTable<TryLease>();

const uncount = (lease: TryLease) => {
  if (lease.load.outstanding > 0) lease.load.outstanding--;
};

/** Reclaims tries whose deadline has passed; cheap unless one has. Also called before reporting loads. */
export function reclaimExpiredTries(nowMs: number): void {
  reclaimExpired(inFlight, nowMs, uncount);
}

/** Tries reclaimed after their deadline since the isolate started: requests that vanished mid-try. */
export function reclaimedTries(): number {
  return inFlight.reclaimed;
}

/** A try to `load`'s endpoint starts; it must be finished by `expiresAtMs` or it is reclaimed. */
export function tryStarted(load: EndpointLoad, nowMs: number, expiresAtMs: number): TryLease {
  reclaimExpired(inFlight, nowMs, uncount);
  load.outstanding++;
  load.tries++;
  load.lastTryAtMs = nowMs;
  return holdLease(inFlight, { expiresAtMs, held: true, load });
}

/** The try is over (answered and its body done, failed, or given up on); a second call does nothing. */
export function tryFinished(lease: TryLease): void {
  if (returnLease(inFlight, lease)) uncount(lease);
}

/** The try's response body is still moving: it stays counted until at least `expiresAtMs`. */
export function extendTry(lease: TryLease, expiresAtMs: number): void {
  extendLease(lease, expiresAtMs);
}

/**
 * A try answered (or failed) after `latencyMs`. Peak EWMA (Finagle, Linkerd): a sample above the
 * estimate replaces it at once, a lower one is blended in with a weight that decays with the time
 * since the last sample. A failed try counts as at least `errorPenaltyMs`, so a fast-failing
 * endpoint does not look attractive.
 */
export function recordLatency(load: EndpointLoad, latencyMs: number, failed: boolean, lb: CompiledLoadBalancer, nowMs: number): void {
  const sample = failed ? Math.max(latencyMs, lb.errorPenaltyMs) : latencyMs;
  if (sample > load.ewmaMs || load.sampledAtMs === 0) load.ewmaMs = sample;
  else {
    const w = Math.exp(-Math.max(0, nowMs - load.sampledAtMs) / lb.ewmaDecayMs);
    load.ewmaMs = load.ewmaMs * w + sample * (1 - w);
  }
  load.sampledAtMs = nowMs;
}

/**
 * A try given up on after `elapsedMs` without an answer (a hedge won): its latency is at least
 * that. An estimate below it is raised to it, so the balancer learns the endpoint is slow; an
 * estimate above it is left alone, since blending in a mere bound would pull it down.
 */
export function recordLatencyLowerBound(load: EndpointLoad, elapsedMs: number, lb: CompiledLoadBalancer, nowMs: number): void {
  if (elapsedMs > decayedEwma(load, lb, nowMs)) {
    load.ewmaMs = elapsedMs;
    load.sampledAtMs = nowMs;
  }
}

function decayedEwma(load: EndpointLoad, lb: CompiledLoadBalancer, nowMs: number): number {
  if (load.sampledAtMs === 0) return 0;
  return load.ewmaMs * Math.exp(-Math.max(0, nowMs - load.sampledAtMs) / lb.ewmaDecayMs);
}

/** The estimate decays towards 0 while idle, so an endpoint that was slow once gets tried again. */
function ewmaCost(load: EndpointLoad, weight: number, lb: CompiledLoadBalancer, nowMs: number): number {
  return ((decayedEwma(load, lb, nowMs) + 1) * (load.outstanding + 1)) / weight;
}

export interface PickRequest {
  nowMs: number;
  /** Independent numbers in [0, 1). */
  random: () => number;
  /** Endpoints already tried by this request: avoided while others remain. */
  exclude: readonly number[];
  /** undefined when every endpoint is available (the fast path); otherwise not ejected and healthy. */
  available: ((index: number) => boolean) | undefined;
  /** The consistent-hash key, when the algorithm uses one and the request has it. */
  hashKey: string | undefined;
  /** The request's colo, for locality preference; "" when unknown. */
  colo: string;
}

const roundRobinNext = new WeakMap<readonly number[], number>();

const cumulativeWeights = new WeakMap<readonly number[], Float64Array>();
/** Keyed by table size and member ids; insertion order is age, the oldest goes first. */
const maglevTables = new Map<string, Int32Array>();
/** The fast path: the table of a snapshot's member array, found without building the key. */
const maglevOfMembers = new WeakMap<readonly number[], Int32Array>();
export const MAGLEV_TABLES_KEPT = 8;
const localMembers = new WeakMap<readonly number[], Map<string, number[]>>();

function localOf(members: readonly number[], endpoints: readonly CompiledEndpoint[], lb: CompiledLoadBalancer, colo: string): number[] {
  let byColo = localMembers.get(members);
  if (!byColo) {
    byColo = new Map();
    localMembers.set(members, byColo);
  }
  let local = byColo.get(colo);
  if (!local) {
    local = members.filter((i) => endpoints[i]!.labels[lb.zoneLabel] === colo);
    byColo.set(colo, local);
  }
  return local;
}

function countAvailable(list: readonly number[], available: (i: number) => boolean): number {
  let n = 0;
  for (let k = 0; k < list.length; k++) if (available(list[k]!)) n++;
  return n;
}

/**
 * Picks an endpoint index (into `endpoints`) from `members`, or -1 when there are none. Ejected
 * and unhealthy (healthy: false) endpoints are skipped unless fewer than the panic threshold of the
 * subset remain, and tried ones are avoided while any other is left.
 */
export function chooseEndpoint(lb: CompiledLoadBalancer, endpoints: readonly CompiledEndpoint[], members: readonly number[] | undefined, req: PickRequest): number {
  if (!members || members.length === 0) return -1;
  let candidates: readonly number[] = members;
  let available = req.available;

  // Panic: when too few of the subset are available, balancing over the few would overload them;
  // use all. Judged over the whole subset (unhealthy members included, which the control plane
  // keeps in it marked healthy: false), so excluding endpoints one by one cannot funnel all traffic
  // to the last one, and before locality narrows the choice.
  if (available && countAvailable(members, available) * 100 < lb.panicThresholdPercent * members.length) available = undefined;
  if (lb.localityPreference && req.colo !== "") {
    const local = localOf(members, endpoints, lb, req.colo);
    if (local.length > 0 && local.length < members.length && (!available || countAvailable(local, available) > 0)) candidates = local;
  }

  if (available || req.exclude.length > 0) {
    // `usable` always describes the list in hand: consistent hashing walks the table with it.
    let usable: ((i: number) => boolean) | undefined = (i: number) => (!available || available(i)) && !req.exclude.includes(i);
    let filtered = candidates.filter(usable);
    if (filtered.length === 0 && available) {
      // Every available endpoint was tried already: try one of them again.
      usable = available;
      filtered = candidates.filter(usable);
    }
    if (filtered.length === 0) {
      usable = undefined;
      filtered = candidates as number[];
    }
    if (filtered.length !== candidates.length) return pickFrom(lb, endpoints, members, filtered, req, usable);
  }
  return pickFrom(lb, endpoints, members, candidates, req, undefined);
}

function pickFrom(
  lb: CompiledLoadBalancer,
  endpoints: readonly CompiledEndpoint[],
  members: readonly number[],
  list: readonly number[],
  req: PickRequest,
  ok: ((i: number) => boolean) | undefined,
): number {
  if (list.length === 1) return list[0]!;
  switch (lb.algorithm) {
    case "round-robin": {
      // The counter belongs to the subset, not the filtered list, so retries keep rotating.
      const next = roundRobinNext.get(members) ?? 0;
      roundRobinNext.set(members, next + 1 >= 1e9 ? 0 : next + 1);
      return list[next % list.length]!;
    }
    case "weighted-random":
      return weightedRandom(endpoints, list, req.random(), list === members);
    case "least-request":
      return powerOfTwo(list, req, (i) => (loadOf(endpoints[i]!.id).outstanding + 1) / endpoints[i]!.weight);
    case "consistent-hash":
      if (req.hashKey !== undefined) return consistentHash(lb, endpoints, members, req.hashKey, ok);
      return powerOfTwo(list, req, (i) => ewmaCost(loadOf(endpoints[i]!.id), endpoints[i]!.weight, lb, req.nowMs));
    default:
      return powerOfTwo(list, req, (i) => ewmaCost(loadOf(endpoints[i]!.id), endpoints[i]!.weight, lb, req.nowMs));
  }
}

function powerOfTwo(list: readonly number[], req: PickRequest, cost: (i: number) => number): number {
  const n = list.length;
  const a = Math.floor(req.random() * n);
  let b = Math.floor(req.random() * (n - 1));
  if (b >= a) b++;
  const ia = list[a]!;
  const ib = list[b]!;
  return cost(ib) < cost(ia) ? ib : ia;
}

/** `cacheable`: the list lives as long as its snapshot (not one filtered for this request). */
function weightedRandom(endpoints: readonly CompiledEndpoint[], list: readonly number[], random: number, cacheable: boolean): number {
  let cumulative = cacheable ? cumulativeWeights.get(list) : undefined;
  if (!cumulative) {
    cumulative = new Float64Array(list.length);
    let total = 0;
    for (let k = 0; k < list.length; k++) cumulative[k] = total += endpoints[list[k]!]!.weight;
    if (cacheable) cumulativeWeights.set(list, cumulative);
  }
  const r = random * cumulative[cumulative.length - 1]!;
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (r < cumulative[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return list[lo]!;
}

/** Maglev over the whole subset, so keys stay put while endpoints come and go; skips forward past unusable ones. */
function consistentHash(lb: CompiledLoadBalancer, endpoints: readonly CompiledEndpoint[], members: readonly number[], key: string, ok: ((i: number) => boolean) | undefined): number {
  let table = maglevOfMembers.get(members);
  if (!table) {
    table = maglevTableFor(members.map((i) => endpoints[i]!.id), lb.maglevTableSize);
    maglevOfMembers.set(members, table);
  }
  const size = table.length;
  const start = maglevSlot(key, size);
  const first = members[table[start]!]!;
  if (!ok || ok(first)) return first;
  for (let step = 1; step < size; step++) {
    const candidate = members[table[(start + step) % size]!]!;
    if (ok(candidate)) return candidate;
  }
  return first;
}

/** The table positions index the ids in order, so the same ids (in the same order) share a table. */
function maglevTableFor(ids: readonly string[], size: number): Int32Array {
  const key = `${size}\n${ids.join("\n")}`;
  let table = maglevTables.get(key);
  if (!table) {
    table = buildMaglevTable(ids, size);
    if (maglevTables.size >= MAGLEV_TABLES_KEPT) maglevTables.delete(maglevTables.keys().next().value!);
    maglevTables.set(key, table);
  }
  return table;
}

/** The hash key of a request: a header, a cookie or a query parameter. */
export function hashKeyOf(lb: CompiledLoadBalancer, headers: Headers, query: () => URLSearchParams): string | undefined {
  const on = lb.hashOn;
  if (!on) return undefined;
  if (on.kind === "header") return headers.get(on.name) ?? undefined;
  if (on.kind === "query") return query().get(on.name) ?? undefined;
  const cookie = headers.get("cookie");
  if (cookie === null) return undefined;
  for (const part of cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === on.name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
