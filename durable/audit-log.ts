// The audit log: a MeshControl component that owns its SQLite table. One record per admin change
// (and per debug credential minted): which token, by name, did what to what, when, from where,
// and how it ended. Records are kept, newest first, up to AUDIT_LOG_LIMIT; older ones are pruned
// like the event log (once per 100 inserts). Read with `GET /v1/audit` and `edgemesh audit`.
import type { AuditOutcome, AuditRecord } from "../auth/audit.ts";
import { LogTrimmer } from "./sql.ts";

export const AUDIT_LOG_LIMIT = 100_000;
/** Records one page holds at most. */
export const MAX_AUDIT_PAGE = 1_000;

export interface AuditQuery {
  /** Only records older than this sequence number (paging back); default: from the newest. */
  before?: number;
  limit?: number;
  /** Only this token's records. */
  tokenName?: string;
  /** Only actions starting with this, e.g. "policy." or "tokens.create". */
  action?: string;
  /** Only this mesh's records. */
  mesh?: string;
}

export interface AuditPage {
  /** Newest first. */
  records: AuditRecord[];
  /** Pass as `before` for the next (older) page; null when this page reached the oldest record. */
  nextBefore: number | null;
}

type Row = {
  seq: number;
  at_ms: number;
  mesh: string;
  token_name: string;
  token_scope: string;
  action: string;
  target: string;
  outcome: string;
  client_ip: string;
  detail: string;
};

const recordOf = (r: Row): AuditRecord => ({
  seq: r.seq,
  atMs: r.at_ms,
  mesh: r.mesh,
  tokenName: r.token_name,
  tokenScope: r.token_scope as AuditRecord["tokenScope"],
  action: r.action,
  target: r.target,
  outcome: r.outcome as AuditOutcome,
  clientIp: r.client_ip,
  detail: JSON.parse(r.detail) as AuditRecord["detail"],
});

export class AuditLog {
  private readonly trimmer: LogTrimmer;

  constructor(
    private readonly sql: SqlStorage,
    keep = AUDIT_LOG_LIMIT,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS audit_log (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      at_ms INTEGER NOT NULL,
      mesh TEXT NOT NULL,
      token_name TEXT NOT NULL,
      token_scope TEXT NOT NULL,
      action TEXT NOT NULL,
      target TEXT NOT NULL,
      outcome TEXT NOT NULL,
      client_ip TEXT NOT NULL,
      detail TEXT NOT NULL
    )`);
    sql.exec("CREATE INDEX IF NOT EXISTS audit_log_by_token ON audit_log (token_name, seq)");
    this.trimmer = new LogTrimmer(sql, "audit_log", () => keep);
  }

  /** Stores a record; returns its sequence number. */
  append(record: Omit<AuditRecord, "seq">): number {
    const seq = this.sql
      .exec<{ seq: number }>(
        "INSERT INTO audit_log (at_ms, mesh, token_name, token_scope, action, target, outcome, client_ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        record.atMs, record.mesh, record.tokenName, record.tokenScope, record.action, record.target, record.outcome, record.clientIp, JSON.stringify(record.detail),
      )
      .one().seq;
    this.trimmer.afterInsert(seq);
    return seq;
  }

  /** Records newest first, filtered in SQL (so a rare token or action is found however far back). */
  page(query: AuditQuery = {}): AuditPage {
    const limit = Math.max(1, Math.min(query.limit ?? 100, MAX_AUDIT_PAGE));
    const where: string[] = [];
    const args: SqlStorageValue[] = [];
    if (query.before !== undefined) (where.push("seq < ?"), args.push(query.before));
    if (query.tokenName !== undefined) (where.push("token_name = ?"), args.push(query.tokenName));
    if (query.mesh !== undefined) (where.push("mesh = ?"), args.push(query.mesh));
    // A prefix by range, not LIKE: no wildcard in the input is ever interpreted.
    if (query.action !== undefined) (where.push("action >= ? AND action < ?"), args.push(query.action, `${query.action}\uffff`));
    const rows = this.sql
      .exec<Row>(`SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`, ...args, limit)
      .toArray();
    const records = rows.map(recordOf);
    return { records, nextBefore: records.length === limit ? records.at(-1)!.seq : null };
  }
}
