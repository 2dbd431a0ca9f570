// Endpoint selection within a subset. Per-isolate state is plain data in a module global, keyed
// by the subset's member list so a new snapshot starts fresh and old state is collected with it.

const roundRobinNext = new WeakMap<readonly number[], number>();

/** Round robin over a subset's members (indexes into the snapshot's endpoints); -1 when empty. */
export function pickEndpoint(members: readonly number[] | undefined): number {
  if (!members || members.length === 0) return -1;
  const next = roundRobinNext.get(members) ?? 0;
  roundRobinNext.set(members, next + 1 >= members.length ? 0 : next + 1);
  return members[next]!;
}
