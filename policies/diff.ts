// Structural diff of two JSON documents, for `edgemesh diff` and the admin API: one entry per
// changed leaf or subtree, addressed by JSON path.
import { jsonPath } from "./schema.ts";

export interface DiffEntry {
  path: string;
  op: "added" | "removed" | "changed";
  from?: unknown;
  to?: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function diffJson(from: unknown, to: unknown): DiffEntry[] {
  const out: DiffEntry[] = [];
  walk(from, to, [], out);
  return out;
}

function walk(a: unknown, b: unknown, path: (string | number)[], out: DiffEntry[]): void {
  if (isObject(a) && isObject(b)) {
    for (const key of Object.keys(a)) {
      if (!(key in b)) out.push({ path: jsonPath([...path, key]), op: "removed", from: a[key] });
      else walk(a[key], b[key], [...path, key], out);
    }
    for (const key of Object.keys(b)) {
      if (!(key in a)) out.push({ path: jsonPath([...path, key]), op: "added", to: b[key] });
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const shared = Math.min(a.length, b.length);
    for (let i = 0; i < shared; i++) walk(a[i], b[i], [...path, i], out);
    for (let i = shared; i < a.length; i++) out.push({ path: jsonPath([...path, i]), op: "removed", from: a[i] });
    for (let i = shared; i < b.length; i++) out.push({ path: jsonPath([...path, i]), op: "added", to: b[i] });
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path: jsonPath(path), op: "changed", from: a, to: b });
}
