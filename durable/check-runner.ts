// How MeshControl runs its active health checks: each with a timeout, a bounded number at once.
// A Worker invocation (and so one alarm) may make only so many subrequests (50 on the free plan,
// 1,000 on paid), so the alarm checks at most CHECKS_PER_ALARM endpoints and continues the rest
// on a follow-up alarm. Pure: no I/O of its own.

/** Checks running at the same time within one alarm. */
export const CHECK_CONCURRENCY = 6;
/** Checks (subrequests) one alarm invocation makes at most; the rest wait for the next alarm. */
export const CHECKS_PER_ALARM = 40;
/** How soon the follow-up alarm runs when checks are left over. */
export const CHECK_BACKLOG_DELAY_MS = 50;

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
