// Loading the stored active policy when MeshControl starts. A document stored under an older,
// more lenient schema may no longer validate; that must not make the object unusable, so the
// failure is returned as data for MeshControl to report, never thrown.
import { validatePolicy, type PolicyDocument, type PolicyError } from "../policies/schema.ts";

/** Why the stored active version is not in force. */
export interface PolicyLoadError {
  version: number;
  message: string;
  /** Validation errors with JSON paths, when the document no longer validates. */
  errors: PolicyError[];
  atMs: number;
}

export type LoadedPolicy<C> = { ok: true; document: PolicyDocument; compiled: C } | { ok: false; error: PolicyLoadError };

/** Parses, validates and compiles the stored text of `version`; every failure becomes an error. */
export function loadStoredPolicy<C>(version: number, storedText: string | undefined, compile: (document: PolicyDocument) => C, nowMs = Date.now()): LoadedPolicy<C> {
  const fail = (message: string, errors: PolicyError[] = []): LoadedPolicy<C> => ({ ok: false, error: { version, message, errors, atMs: nowMs } });
  if (storedText === undefined) return fail(`the active policy version ${version} is missing from the policy history`);
  let raw: unknown;
  try {
    raw = JSON.parse(storedText);
  } catch (err) {
    return fail(`stored policy version ${version} is not valid JSON: ${(err as Error).message}`);
  }
  const checked = validatePolicy(raw);
  if (!checked.ok) {
    const first = checked.errors[0];
    return fail(
      `stored policy version ${version} no longer validates (${checked.errors.length} error(s), first at ${first?.path}: ${first?.message}); ` +
        "no policy is active, sidecars keep serving their last snapshots: apply a fixed policy or roll back",
      checked.errors,
    );
  }
  try {
    return { ok: true, document: checked.document, compiled: compile(checked.document) };
  } catch (err) {
    return fail(`stored policy version ${version} validates but does not compile: ${(err as Error).message}; apply a fixed policy or roll back`);
  }
}
