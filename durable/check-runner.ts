// How MeshControl runs its active health checks: each with a timeout, a bounded number at once.
// A Worker invocation may have only 6 connections waiting for response headers at once (more are
// queued, and a queued check would time out while it waits) and make only so many subrequests
// (1,000 on the paid plan). So the object does not check endpoints itself: it hands batches of
// CHECKS_PER_INVOCATION checks to the control Worker's HealthProbe entrypoint, each call a new
// invocation with its own 6 connections, INVOCATIONS_IN_FLIGHT calls at a time. A service of 1,024
// endpoints of which half hang for the whole timeout then takes
// ceil(1024 / 6 / 64) = 3 waves of at most one timeout each: about 3 s with the 1 s default.
// Without the HEALTH_PROBE binding the object checks CHECK_CONCURRENCY at a time itself. Pure.

/** Checks one invocation runs at once: its simultaneous-connection limit. */
export const CHECKS_PER_INVOCATION = 6;
/** Probe invocations the alarm keeps in flight (each one subrequest of the alarm). */
export const INVOCATIONS_IN_FLIGHT = 64;
/** Checks running at the same time when the object checks endpoints itself. */
export const CHECK_CONCURRENCY = 6;
/**
 * Checks one alarm hands out: 2,048 checks are 342 probe invocations, a third of the paid plan's
 * 1,000 subrequests. The rest wait for a follow-up alarm.
 */
export const CHECKS_PER_ALARM = 2_048;
/** Checks one alarm runs itself, without the HEALTH_PROBE binding (subrequests of its own). */
export const LOCAL_CHECKS_PER_ALARM = 40;
/** How soon the follow-up alarm runs when checks are left over. */
export const CHECK_BACKLOG_DELAY_MS = 50;

/** Splits `items` into consecutive batches of at most `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Resolves with the promise's value, or "timeout" after `ms`. A check that fails after its
 * timeout (an aborted fetch) must not surface as an unhandled rejection; Promise.race already
 * subscribes to it, and the explicit catch keeps that true should this ever stop using race.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  promise.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `run` over every item with at most `concurrency` running at once; rejections propagate. */
export async function runBounded<T>(items: readonly T[], concurrency: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
