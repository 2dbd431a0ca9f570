// Which snapshot the per-isolate outlier and load state follows. Requests in flight hold the
// snapshot they started with; one that started before a newer snapshot arrived must not realign
// the state back to its older one (forgetting, say, an ejection of an endpoint only the newer one
// has, which would be readmitted early). So the state only ever moves forwards: to a later
// generation of the same epoch, or to a new epoch (a control plane whose storage was reset).
import type { ServiceSnapshot } from "../../policies/snapshot.ts";

/** Epochs left behind are remembered (a few), so a request still holding one cannot move back to it. */
const RETIRED_EPOCHS_KEPT = 8;

export interface Alignment {
  epoch: string;
  generation: number;
  /** Epochs aligned with before, newest last. */
  retiredEpochs: string[];
}

export function newAlignment(): Alignment {
  return { epoch: "", generation: 0, retiredEpochs: [] };
}

/**
 * Whether `snapshot` is newer than the one the state is aligned with; if so the alignment moves to
 * it and the caller realigns the state. Answers false for the same or an older snapshot.
 */
export function alignForward(alignment: Alignment, snapshot: Pick<ServiceSnapshot, "epoch" | "generation">): boolean {
  if (snapshot.epoch === alignment.epoch) {
    if (snapshot.generation <= alignment.generation) return false;
  } else {
    if (alignment.retiredEpochs.includes(snapshot.epoch)) return false;
    if (alignment.epoch !== "" || alignment.generation !== 0) {
      alignment.retiredEpochs.push(alignment.epoch);
      if (alignment.retiredEpochs.length > RETIRED_EPOCHS_KEPT) alignment.retiredEpochs.shift();
    }
    alignment.epoch = snapshot.epoch;
  }
  alignment.generation = snapshot.generation;
  return true;
}
