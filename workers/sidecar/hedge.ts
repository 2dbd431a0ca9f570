// Hedging: when the first try has not answered after `afterMs`, a second try goes to another
// endpoint; the first good answer wins and the other try is cancelled. Pure over promises.

export interface RunningTry<T> {
  result: Promise<T>;
  /** Aborts the try; its result must then be ignored. */
  cancel: () => void;
}

export interface HedgeResult<T> {
  value: T;
  /** 0 the first try, 1 the hedge. */
  winner: 0 | 1;
  hedged: boolean;
}

/**
 * Runs `first`; after `afterMs` without a result, asks `startHedge` for a second try (it may
 * decline, e.g. no budget or no other endpoint, by returning undefined). A result is good when
 * `isGood` says so; when both are bad the later one is returned. Every result that is not
 * returned goes to `discard` (e.g. to cancel a losing response's body). A try that rejects counts
 * as bad; only when every try rejected does the hedge reject, with the last error.
 */
export function hedge<T>(
  first: RunningTry<T>,
  afterMs: number,
  startHedge: () => RunningTry<T> | undefined,
  isGood: (value: T) => boolean,
  discard: (value: T) => void = () => {},
): Promise<HedgeResult<T>> {
  return new Promise((resolve, reject) => {
    let second: RunningTry<T> | undefined;
    let settled = false;
    let running = 1;
    let lastBad: { value: T; from: 0 | 1 } | undefined;
    let lastError: unknown;
    const end = (value: T, from: 0 | 1) => {
      settled = true;
      clearTimeout(timer);
      resolve({ value, winner: from, hedged: second !== undefined });
    };
    const onValue = (value: T, from: 0 | 1) => {
      running--;
      if (settled) return discard(value);
      if (isGood(value)) {
        if (lastBad) discard(lastBad.value);
        if (from === 0) second?.cancel();
        else first.cancel();
        return end(value, from);
      }
      if (lastBad) discard(lastBad.value);
      lastBad = { value, from };
      if (running === 0) end(value, from); // otherwise wait for the other one
    };
    const onError = (err: unknown) => {
      running--;
      if (settled) return;
      lastError = err;
      if (running > 0) return;
      if (lastBad) return end(lastBad.value, lastBad.from);
      settled = true;
      clearTimeout(timer);
      reject(lastError);
    };
    const watch = (t: RunningTry<T>, from: 0 | 1) => t.result.then((v) => onValue(v, from), onError);
    const timer = setTimeout(() => {
      if (settled) return;
      second = startHedge();
      if (second) {
        running++;
        watch(second, 1);
      }
    }, afterMs);
    watch(first, 0);
  });
}
