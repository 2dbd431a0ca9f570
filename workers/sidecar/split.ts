// Weighted split across destinations, over the cumulative table the compiler built.
import type { CompiledSplit } from "../../policies/snapshot.ts";

/** Picks a destination subset; `random` is in [0, 1). */
export function pickSubset(split: CompiledSplit, random: number = Math.random()): string {
  const r = random * split.total;
  const { cumulative, subsets } = split;
  // Splits are short (a handful of destinations): a forward scan beats a binary search here.
  for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]!) return subsets[i]!;
  return subsets[subsets.length - 1]!;
}
