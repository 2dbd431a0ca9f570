// Slows down guessing of admin tokens: each client (by IP, `cf-connecting-ip`) gets a few free
// failures; after that every failure doubles a lockout during which it is answered 429 with
// Retry-After without its token being looked at, so a lockout is no oracle either. Failures are
// forgotten after a quiet period and a success clears them. Memory is bounded: past `maxClients`
// the client seen longest ago is dropped (at worst that client gets its free failures again).
//
// Tokens are 256 random bits, so this is not what keeps them safe; it keeps the admin API and its
// logs from being flooded by guessing, and slows a guess at a weak bootstrap token.

export interface ThrottleConfig {
  /** Failures a client may make before it is slowed down. */
  freeFailures: number;
  /** Lockout after the first failure past the free ones; doubles with each further failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A client with no failure for this long starts afresh. */
  forgetAfterMs: number;
  /** Clients tracked at once. */
  maxClients: number;
}

export const DEFAULT_THROTTLE: ThrottleConfig = {
  freeFailures: 5,
  baseDelayMs: 1_000,
  maxDelayMs: 5 * 60_000,
  forgetAfterMs: 15 * 60_000,
  maxClients: 10_000,
};

interface ClientRecord {
  failures: number;
  lastFailureMs: number;
  blockedUntilMs: number;
}

export interface Throttle {
  readonly config: ThrottleConfig;
  /** Insertion order is last-failure order: the first entry is the stalest. */
  readonly clients: Map<string, ClientRecord>;
  /** Requests answered 429 since the throttle was made. */
  refused: number;
}

export function newThrottle(config: Partial<ThrottleConfig> = {}): Throttle {
  return { config: { ...DEFAULT_THROTTLE, ...config }, clients: new Map(), refused: 0 };
}

function current(t: Throttle, client: string, nowMs: number): ClientRecord | undefined {
  const record = t.clients.get(client);
  if (record && nowMs - record.lastFailureMs >= t.config.forgetAfterMs && nowMs >= record.blockedUntilMs) {
    t.clients.delete(client);
    return undefined;
  }
  return record;
}

/** Before checking a token: 0 when the client may try, otherwise how long it must wait (ms). */
export function throttleWaitMs(t: Throttle, client: string, nowMs: number): number {
  const record = current(t, client, nowMs);
  if (!record || nowMs >= record.blockedUntilMs) return 0;
  t.refused++;
  return record.blockedUntilMs - nowMs;
}

/** After a wrong or missing token: returns the lockout it now has (0 while failures are free). */
export function recordFailure(t: Throttle, client: string, nowMs: number): number {
  let record = current(t, client, nowMs);
  if (record) t.clients.delete(client); // re-inserted below: last in order is the freshest
  else {
    record = { failures: 0, lastFailureMs: nowMs, blockedUntilMs: 0 };
    while (t.clients.size >= t.config.maxClients) t.clients.delete(t.clients.keys().next().value!);
  }
  record.failures++;
  record.lastFailureMs = nowMs;
  const beyond = record.failures - t.config.freeFailures;
  if (beyond > 0) {
    // 2^30 ms is past any sensible maxDelayMs; the cap keeps the power finite.
    const delayMs = Math.min(t.config.maxDelayMs, t.config.baseDelayMs * 2 ** Math.min(beyond - 1, 30));
    record.blockedUntilMs = nowMs + delayMs;
  }
  t.clients.set(client, record);
  return beyond > 0 ? record.blockedUntilMs - nowMs : 0;
}

/** After a valid token: the client's failures are forgiven. */
export function recordSuccess(t: Throttle, client: string): void {
  t.clients.delete(client);
}

/** Retry-After in whole seconds (at least 1) for a wait in ms. */
export function retryAfterSeconds(waitMs: number): string {
  return String(Math.max(1, Math.ceil(waitMs / 1000)));
}

/** The client key of a request: Cloudflare's `cf-connecting-ip`, which a client cannot set. */
export function clientKeyOf(headers: Headers): string {
  return headers.get("cf-connecting-ip") ?? "unknown";
}
