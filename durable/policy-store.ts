// The policy store: every applied document as a version (who, when, apply or rollback), the
// active version, and history pruned to the newest versions. Documents are stored in pieces
// (policy-sections.ts): a manifest and one section per service, content-addressed and chunked
// below SQLite's 2 MB row limit, so a large document fits and an unchanged service costs nothing.
import { assembleDocument, type PolicyManifest, type PreparedPolicy } from "./policy-sections.ts";
import { addMissingColumns, getParts, putParts, type MetaTable, type Row } from "./sql.ts";

/** Policy versions kept by default; older ones are pruned (EDGEMESH_POLICY_HISTORY_LIMIT). */
export const DEFAULT_POLICY_HISTORY_LIMIT = 100;

export interface PolicyVersionInfo {
  version: number;
  appliedAtMs: number;
  author: string;
  message: string;
  kind: "apply" | "rollback";
  /** For a rollback: the version whose document it restored. */
  restoredVersion: number | null;
}

/** What commit needs: the manifest, and the text of every piece the store may lack. */
export interface PolicyPieces {
  manifestDigest: string;
  /** Piece digest -> text, for the manifest and sections not already stored. */
  texts: Record<string, string>;
}

const ACTIVE_VERSION = "active_version";

export function piecesOf(prepared: PreparedPolicy): PolicyPieces {
  const texts: Record<string, string> = { [prepared.manifestDigest]: prepared.manifestText };
  for (const s of prepared.sections) texts[s.digest] = s.text;
  return { manifestDigest: prepared.manifestDigest, texts };
}

export class PolicyStore {
  /** How many kept versions reference each stored piece; built on the first prune. */
  private references: Map<string, number> | undefined;
  private readonly manifests = new Map<number, PolicyManifest>();

  constructor(
    private readonly sql: SqlStorage,
    private readonly meta: MetaTable,
  ) {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS policy_versions (
        version INTEGER PRIMARY KEY,
        document TEXT NOT NULL,
        applied_at_ms INTEGER NOT NULL,
        author TEXT NOT NULL,
        message TEXT NOT NULL,
        kind TEXT NOT NULL,
        restored_version INTEGER
      );
      CREATE TABLE IF NOT EXISTS policy_pieces (
        digest TEXT NOT NULL,
        part INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (digest, part)
      );
    `);
    // Versions stored before documents were split keep their whole text in `document`.
    addMissingColumns(sql, "policy_versions", [["manifest", "TEXT"]]);
  }

  activeVersion(): number {
    return Number(this.meta.get(ACTIVE_VERSION) ?? 0);
  }

  /** The digests among `digests` that are not stored. */
  missing(digests: readonly string[]): string[] {
    return digests.filter((d) => this.sql.exec("SELECT 1 FROM policy_pieces WHERE digest = ? AND part = 0", d).toArray().length === 0);
  }

  /**
   * Stores a new version and makes it active. Pieces already stored are not written again. Refuses
   * (and writes nothing) when a piece the manifest names is neither stored nor given. Run it in a
   * transaction.
   */
  commit(pieces: PolicyPieces, info: Omit<PolicyVersionInfo, "version">): { ok: true; version: number } | { ok: false; missing: string[] } {
    const manifestText = pieces.texts[pieces.manifestDigest] ?? this.pieceText(pieces.manifestDigest);
    if (manifestText === undefined) return { ok: false, missing: [pieces.manifestDigest] };
    const manifest = JSON.parse(manifestText) as PolicyManifest;
    // The active version's pieces are never pruned, so only the others need a look.
    const active = new Set(this.manifest(this.activeVersion())?.services.map(([, d]) => d));
    const absent = this.missing([...new Set(manifest.services.map(([, d]) => d))].filter((d) => pieces.texts[d] === undefined && !active.has(d)));
    if (absent.length > 0) return { ok: false, missing: absent };
    this.storePieces(pieces.texts);
    return { ok: true, version: this.addVersion(pieces.manifestDigest, manifest, info) };
  }

  /** Stores pieces (content-addressed: one already stored is left alone); returns the new ones. */
  storePieces(texts: Record<string, string>): string[] {
    const added: string[] = [];
    for (const [digest, text] of Object.entries(texts)) if (this.storePiece(digest, text)) added.push(digest);
    return added;
  }

  /** Deletes pieces stored for a commit that then did not happen. */
  dropPieces(digests: readonly string[]): void {
    for (const digest of digests) this.sql.exec("DELETE FROM policy_pieces WHERE digest = ?", digest);
  }

  /**
   * Adds a version whose manifest and sections are all stored already (storePieces) and makes it
   * active. Run it in a transaction.
   */
  addVersion(manifestDigest: string, manifest: PolicyManifest, info: Omit<PolicyVersionInfo, "version">): number {
    const last = this.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM policy_versions").one().v ?? 0;
    const version = last + 1;
    this.sql.exec(
      "INSERT INTO policy_versions (version, document, applied_at_ms, author, message, kind, restored_version, manifest) VALUES (?, '', ?, ?, ?, ?, ?, ?)",
      version, info.appliedAtMs, info.author, info.message, info.kind, info.restoredVersion, manifestDigest,
    );
    this.meta.set(ACTIVE_VERSION, version);
    this.manifests.clear();
    this.manifests.set(version, manifest);
    if (this.references) this.reference(manifest, manifestDigest, +1);
    return version;
  }

  private storePiece(digest: string, text: string): boolean {
    if (this.sql.exec("SELECT 1 FROM policy_pieces WHERE digest = ? AND part = 0", digest).toArray().length > 0) return false;
    putParts(this.sql, "policy_pieces", "digest", digest, text);
    return true;
  }

  private pieceText(digest: string): string | undefined {
    return getParts(this.sql, "policy_pieces", "digest", digest);
  }

  /** The section text of one service in a version's manifest, e.g. to parse only what changed. */
  sectionText(digest: string): string | undefined {
    return this.pieceText(digest);
  }

  /** The manifest of a stored version, or null for a legacy (whole-text) version or none. */
  manifest(version: number): PolicyManifest | null {
    const cached = this.manifests.get(version);
    if (cached) return cached;
    const digest = this.sql.exec<{ manifest: string | null }>("SELECT manifest FROM policy_versions WHERE version = ?", version).toArray()[0]?.manifest;
    if (!digest) return null;
    const text = this.pieceText(digest);
    if (text === undefined) return null;
    const manifest = JSON.parse(text) as PolicyManifest;
    // Only the active version's manifest is looked at often; keep just that one.
    if (version === this.activeVersion()) this.manifests.set(version, manifest);
    return manifest;
  }

  /** The document of a version as its JSON text, or null when there is no such version. */
  documentText(version: number): string | null {
    const row = this.sql.exec<{ document: string; manifest: string | null }>("SELECT document, manifest FROM policy_versions WHERE version = ?", version).toArray()[0];
    if (!row) return null;
    if (!row.manifest) return row.document;
    const manifest = this.manifest(version);
    if (!manifest) return null;
    return assembleDocument(manifest, (digest) => this.pieceText(digest) ?? "null");
  }

  info(version: number): PolicyVersionInfo | null {
    const row = this.sql.exec<Row>("SELECT version, applied_at_ms, author, message, kind, restored_version FROM policy_versions WHERE version = ?", version).toArray()[0];
    return row ? versionInfo(row) : null;
  }

  history(limit: number): PolicyVersionInfo[] {
    return this.sql.exec<Row>(
      "SELECT version, applied_at_ms, author, message, kind, restored_version FROM policy_versions ORDER BY version DESC LIMIT ?",
      Math.max(1, Math.min(limit, 1000)),
    ).toArray().map(versionInfo);
  }

  /** The newest version before `version` that is still kept. */
  previousVersion(version: number): number | undefined {
    return this.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM policy_versions WHERE version < ?", version).one().v ?? undefined;
  }

  oldestVersion(): number {
    return this.sql.exec<{ v: number | null }>("SELECT MIN(version) AS v FROM policy_versions").one().v ?? 0;
  }

  /**
   * Keeps the newest `keep` versions (the active one is always the newest) and deletes the rest,
   * with every stored piece no kept version references. Returns the versions removed.
   */
  prune(keep: number): number[] {
    const newest = this.sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM policy_versions").one().v ?? 0;
    const cutoff = newest - Math.max(1, keep);
    const doomed = this.sql.exec<{ version: number; manifest: string | null }>("SELECT version, manifest FROM policy_versions WHERE version <= ?", cutoff).toArray();
    if (doomed.length === 0) return [];
    this.referenceCounts();
    for (const row of doomed) {
      const manifest = row.manifest ? this.manifest(row.version) : null;
      if (manifest && row.manifest) {
        for (const digest of this.reference(manifest, row.manifest, -1)) this.sql.exec("DELETE FROM policy_pieces WHERE digest = ?", digest);
      }
      this.manifests.delete(row.version);
    }
    this.sql.exec("DELETE FROM policy_versions WHERE version <= ?", cutoff);
    return doomed.map((r) => r.version);
  }

  private referenceCounts(): void {
    if (this.references) return;
    this.references = new Map();
    for (const row of this.sql.exec<{ version: number; manifest: string | null }>("SELECT version, manifest FROM policy_versions WHERE manifest IS NOT NULL").toArray()) {
      const manifest = this.manifest(row.version);
      if (manifest) this.reference(manifest, row.manifest!, +1);
    }
  }

  /** Adds (or removes) one version's references; returns the pieces no version references any more. */
  private reference(manifest: PolicyManifest, manifestDigest: string, delta: 1 | -1): string[] {
    const counts = this.references!;
    const released: string[] = [];
    for (const digest of [manifestDigest, ...manifest.services.map(([, d]) => d)]) {
      const n = (counts.get(digest) ?? 0) + delta;
      if (n > 0) counts.set(digest, n);
      else {
        counts.delete(digest);
        if (delta < 0) released.push(digest);
      }
    }
    return released;
  }
}

function versionInfo(row: Row): PolicyVersionInfo {
  return {
    version: row.version as number,
    appliedAtMs: row.applied_at_ms as number,
    author: row.author as string,
    message: row.message as string,
    kind: row.kind as PolicyVersionInfo["kind"],
    restoredVersion: (row.restored_version as number | null) ?? null,
  };
}
