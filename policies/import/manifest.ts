// Reading a Kubernetes manifest while keeping track of what was understood. Translators read
// fields through `Field`s, which mark them used; `ignore` records a field with the reason it is
// not translated. Afterwards `ignoredFields` walks the manifest and lists every field that was
// neither used nor explained (as one entry per untouched subtree), so nothing is dropped silently:
// a field an importer does not know, a typo, or a feature edgemesh lacks all show up with a path.
import { jsonPath } from "../schema.ts";
import type { IgnoredField, ImportError, ImportWarning, InputLocation } from "./types.ts";

type Key = string | number;

export const UNKNOWN_FIELD = "not a field edgemesh reads for this kind (unknown, or no edgemesh equivalent)";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (isObject(v)) return "an object";
  return `a ${typeof v} (${JSON.stringify(v)})`;
}

export class Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly resource: string;
  private readonly used = new Set<string>();
  private readonly usedWhole = new Set<string>();
  private readonly reasons = new Map<string, string>();
  readonly errors: ImportError[] = [];
  readonly warnings: ImportWarning[] = [];

  constructor(readonly value: Record<string, unknown>, readonly source: string) {
    this.apiVersion = typeof value.apiVersion === "string" ? value.apiVersion : "";
    this.kind = typeof value.kind === "string" ? value.kind : "";
    const metadata = isObject(value.metadata) ? value.metadata : {};
    this.name = typeof metadata.name === "string" ? metadata.name : "";
    this.namespace = typeof metadata.namespace === "string" ? metadata.namespace : undefined;
    this.resource = `${this.kind || "(no kind)"}/${this.name || "(no name)"}`;
    // Identity and bookkeeping, not configuration: never listed as ignored.
    for (const key of ["apiVersion", "kind", "metadata", "status"]) this.usedWhole.add(jsonPath([key]));
  }

  /** The resource's top level. */
  root(): Field {
    this.used.add("$");
    return new Field(this, [], this.value);
  }

  location(path: readonly Key[]): InputLocation {
    return { resource: this.resource, source: this.source, path: jsonPath(path) };
  }

  markUsed(path: readonly Key[], whole: boolean): void {
    const p = jsonPath(path);
    this.used.add(p);
    if (whole) this.usedWhole.add(p);
  }

  markIgnored(path: readonly Key[], reason: string): void {
    this.reasons.set(jsonPath(path), reason);
  }

  error(path: readonly Key[], message: string): void {
    this.errors.push({ ...this.location(path), message });
  }

  warn(path: readonly Key[], message: string): void {
    this.warnings.push({ ...this.location(path), message });
  }

  /** Every field neither used nor explained, one entry per untouched subtree. */
  ignoredFields(): IgnoredField[] {
    const out: IgnoredField[] = [];
    const walk = (value: unknown, path: Key[]) => {
      const p = jsonPath(path);
      const reason = this.reasons.get(p);
      if (reason !== undefined) {
        out.push({ ...this.location(path), reason });
        return;
      }
      if (this.usedWhole.has(p)) return;
      if (!this.used.has(p)) {
        out.push({ ...this.location(path), reason: UNKNOWN_FIELD });
        return;
      }
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
      else if (isObject(value)) for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    };
    walk(this.value, []);
    return out;
  }

  /** Records the whole resource as not translated. */
  ignoreAll(reason: string): void {
    this.reasons.set("$", reason);
  }

  /** Whether the whole resource was left out. */
  get wholeIgnored(): boolean {
    return this.reasons.has("$");
  }
}

/** A field of a manifest: reading it through the typed getters marks it used. */
export class Field {
  constructor(readonly manifest: Manifest, readonly path: readonly Key[], readonly value: unknown) {}

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  /** A child, not yet marked used. */
  at(key: Key): Field {
    const v = Array.isArray(this.value) && typeof key === "number" ? this.value[key] : isObject(this.value) ? this.value[key as string] : undefined;
    return new Field(this.manifest, [...this.path, key], v);
  }

  /** Marks this field understood; an object's or list's children are still checked one by one. */
  use(): this {
    if (this.present) this.manifest.markUsed(this.path, false);
    return this;
  }

  /** Marks this field and everything under it understood. */
  useWhole(): this {
    if (this.present) this.manifest.markUsed(this.path, true);
    return this;
  }

  /** Records this field as not translated, with the reason; no-op when absent. */
  ignore(reason: string): void {
    if (this.present) this.manifest.markIgnored(this.path, reason);
  }

  error(message: string): void {
    this.manifest.error(this.path, message);
  }

  warn(message: string): void {
    this.manifest.warn(this.path, message);
  }

  private wrongType(expected: string): undefined {
    this.error(`expected ${expected}, got ${typeName(this.value)}`);
    return undefined;
  }

  string(key: Key): string | undefined {
    const f = this.at(key);
    if (!f.present) return undefined;
    f.use();
    return typeof f.value === "string" ? f.value : f.wrongType("a string");
  }

  number(key: Key): number | undefined {
    const f = this.at(key);
    if (!f.present) return undefined;
    f.use();
    if (typeof f.value === "number" && Number.isFinite(f.value)) return f.value;
    // Kubernetes tooling sometimes quotes numbers.
    if (typeof f.value === "string" && /^-?\d+(\.\d+)?$/.test(f.value.trim())) return Number(f.value);
    return f.wrongType("a number");
  }

  boolean(key: Key): boolean | undefined {
    const f = this.at(key);
    if (!f.present) return undefined;
    f.use();
    return typeof f.value === "boolean" ? f.value : f.wrongType("true or false");
  }

  /** A child object (marked used; its own children are checked separately). */
  object(key: Key): Field | undefined {
    const f = this.at(key);
    if (!f.present) return undefined;
    if (!isObject(f.value)) {
      f.use();
      return f.wrongType("an object");
    }
    return f.use();
  }

  /** The elements of a child list. */
  list(key: Key): Field[] {
    const f = this.at(key);
    if (!f.present) return [];
    f.use();
    if (!Array.isArray(f.value)) {
      f.wrongType("a list");
      return [];
    }
    return f.value.map((_, i) => f.at(i));
  }

  /** The entries of a child map (an object with arbitrary keys). */
  entries(key: Key): [string, Field][] {
    const f = this.object(key);
    if (!f) return [];
    return Object.keys(f.value as object).map((k) => [k, f.at(k)]);
  }

  /** A child map of strings, wholly used; undefined when absent. */
  stringMap(key: Key): Record<string, string> | undefined {
    const f = this.object(key);
    if (!f) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(f.value as object)) {
      if (typeof v === "string") out[k] = v;
      else if (typeof v === "number" || typeof v === "boolean") out[k] = String(v);
      else f.at(k).error(`expected a string, got ${typeName(v)}`);
      f.at(k).use();
    }
    return out;
  }

  /** A child list of strings. */
  strings(key: Key): string[] {
    return this.list(key).flatMap((f) => {
      f.use();
      if (typeof f.value === "string") return [f.value];
      f.error(`expected a string, got ${typeName(f.value)}`);
      return [];
    });
  }

  /** Marks each named child ignored with the same reason. */
  ignoreEach(keys: string[], reason: string): void {
    for (const k of keys) this.at(k).ignore(reason);
  }
}
