// Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size in which
// every endpoint owns a near-equal share of slots, and removing one endpoint moves only its own
// keys. Built once per subset member list and isolate, looked up in O(1).

/** FNV-1a, 32 bits, over UTF-16 code units; `seed` varies the offset basis. */
export function fnv1a(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // A final avalanche so short keys that differ in one character spread over the table.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/** Table of positions into `ids`; size must be prime and larger than ids.length. */
export function buildMaglevTable(ids: readonly string[], size: number): Int32Array {
  const table = new Int32Array(size).fill(-1);
  const n = ids.length;
  if (n === 0) return table;
  const offset = new Array<number>(n);
  const skip = new Array<number>(n);
  const next = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    offset[i] = fnv1a(ids[i]!, 0x5bd1e995) % size;
    skip[i] = (fnv1a(ids[i]!, 0x1b873593) % (size - 1)) + 1;
  }
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      let slot = (offset[i]! + next[i]! * skip[i]!) % size;
      while (table[slot]! >= 0) {
        next[i]!++;
        slot = (offset[i]! + next[i]! * skip[i]!) % size;
      }
      table[slot] = i;
      next[i]!++;
      filled++;
    }
  }
  return table;
}

/** Slot of a key in a table of `size`. */
export function maglevSlot(key: string, size: number): number {
  return fnv1a(key) % size;
}
