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
 * `isGood` says so; when both are bad the later one is returned.
 */
export function hedge<T>(first: RunningTry<T>, afterMs: number, startHedge: () => RunningTry<T> | undefined, isGood: (value: T) => boolean): Promise<HedgeResult<T>> {
  return new Promise((resolve) => {
    let second: RunningTry<T> | undefined;
    let settled = false;
    let badCount = 0;
    const timer = setTimeout(() => {
      if (settled) return;
      second = startHedge();
      if (second) second.result.then((v) => finish(v, 1));
    }, afterMs);
    const finish = (value: T, from: 0 | 1) => {
      if (settled) return;
      const running = second === undefined ? 1 : 2;
      if (!isGood(value) && ++badCount < running) return; // wait for the other one
      settled = true;
      clearTimeout(timer);
      if (from === 0) second?.cancel();
      else first.cancel();
      resolve({ value, winner: from, hedged: second !== undefined });
    };
    first.result.then((v) => finish(v, 0));
  });
}
