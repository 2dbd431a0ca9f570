// Applying a policy document: the control Worker validates it and splits it into pieces
// (policy-sections.ts), so MeshControl never parses a whole document; the object is sent only the
// pieces it lacks, then commits. A rollback validates the stored document again the same way (the
// schema may have become stricter since).
import type { ApplyResult, CommitOptions } from "../../durable/mesh-control.ts";
import { preparePolicy, type Json } from "../../durable/policy-sections.ts";
import { validatePolicy } from "../../policies/schema.ts";
import type { MeshControlApi } from "./common.ts";

export async function applyDocument(stub: MeshControlApi, mesh: string, raw: unknown, options: CommitOptions): Promise<ApplyResult> {
  const checked = validatePolicy(raw);
  if (!checked.ok) return { ok: false, reason: "invalid", errors: checked.errors };
  if (checked.document.mesh !== mesh) {
    return { ok: false, reason: "invalid", errors: [{ path: "$.mesh", message: `this document is for mesh "${checked.document.mesh}" but was sent to mesh "${mesh}"` }] };
  }
  const prepared = await preparePolicy(raw as { [key: string]: Json });
  const all: Record<string, string> = { [prepared.manifestDigest]: prepared.manifestText };
  for (const s of prepared.sections) all[s.digest] = s.text;
  const missing = await stub.missingPolicyPieces(Object.keys(all));
  const texts = Object.fromEntries(missing.map((d) => [d, all[d]!]));
  let result = await stub.commitPolicy({ manifestDigest: prepared.manifestDigest, texts }, options);
  // A piece pruned between the two calls: send everything once more.
  if (!result.ok && result.reason === "missing-pieces") result = await stub.commitPolicy({ manifestDigest: prepared.manifestDigest, texts: all }, options);
  if (!result.ok && result.reason === "missing-pieces") throw new Error(`policy pieces missing after resending them: ${result.missing.join(", ")}`);
  return result;
}

/** Re-applies an earlier version (by default the one before the active one) as a new version. */
export async function rollbackTo(stub: MeshControlApi, mesh: string, toVersion: number | undefined, options: Omit<CommitOptions, "kind">): Promise<ApplyResult> {
  const target = await stub.rollbackTarget(toVersion);
  if (!target.ok) return { ok: false, reason: "not-found", message: target.message };
  const text = await stub.policyText(target.version);
  if (text === null) return { ok: false, reason: "not-found", message: `there is no policy version ${target.version}` };
  return applyDocument(stub, mesh, JSON.parse(text), { ...options, kind: "rollback", restoredVersion: target.version });
}
