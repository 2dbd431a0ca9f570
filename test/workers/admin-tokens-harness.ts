// A Durable Object that hosts the AdminTokens and AuditLog components on real SQLite storage, for
// test/integration/admin-tokens-storage.test.ts, with the brute-force throttle in its memory as
// MeshControl holds it. The Worker passes JSON calls through to the object's RPC methods.
import { DurableObject } from "cloudflare:workers";
import { newThrottle, type Throttle } from "../../auth/throttle.ts";
import { AdminTokens, authenticateAdmin } from "../../durable/admin-tokens.ts";
import { AuditLog, type AuditQuery } from "../../durable/audit-log.ts";
import type { AuditRecord } from "../../auth/audit.ts";
import type { AdminScope } from "../../auth/admin-token.ts";

interface Env {
  HARNESS: DurableObjectNamespace<AdminTokensHarness>;
  EDGEMESH_ADMIN_TOKEN: string;
}

export class AdminTokensHarness extends DurableObject<Env> {
  private readonly tokens: AdminTokens;
  /** Kept small, to see pruning. */
  private readonly audit: AuditLog;
  private readonly throttle: Throttle = newThrottle({ freeFailures: 3, baseDelayMs: 60_000 });
  private rowsRead = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // SqlStorage that counts the rows its queries read, to show lookups use the hash's index.
    const sql = ctx.storage.sql;
    const counting = new Proxy(sql, {
      get: (target, prop) => {
        if (prop === "exec") {
          return (query: string, ...bindings: SqlStorageValue[]) => {
            const cursor = target.exec(query, ...bindings);
            const rows = cursor.toArray();
            this.rowsRead += cursor.rowsRead;
            return { toArray: () => rows, one: () => rows[0], rowsWritten: cursor.rowsWritten, rowsRead: cursor.rowsRead };
          };
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    this.tokens = new AdminTokens(counting);
    this.audit = new AuditLog(counting, 150);
  }

  appendAudit(record: Omit<AuditRecord, "seq">) {
    return this.audit.append(record);
  }

  auditPage(query: AuditQuery) {
    return this.audit.page(query);
  }

  create(name: string, scope: AdminScope, createdBy: string, ttlMs: number | null, nowMs: number) {
    return this.tokens.create({ name, scope, createdBy, ttlMs: ttlMs ?? undefined }, nowMs);
  }

  list(nowMs: number) {
    return this.tokens.list(nowMs);
  }

  /** Rows read by SQL since the last call. */
  takeRowsRead() {
    const n = this.rowsRead;
    this.rowsRead = 0;
    return n;
  }

  revoke(name: string) {
    return this.tokens.revoke(name);
  }

  authenticate(authorization: string | null, clientKey: string, nowMs: number) {
    return authenticateAdmin({ authorization, clientKey, nowMs, bootstrapToken: this.env.EDGEMESH_ADMIN_TOKEN }, this.tokens, this.throttle);
  }

  /** Everything the table holds, to show what is (and is not) stored. */
  rawRows() {
    return this.ctx.storage.sql.exec("SELECT * FROM admin_tokens").toArray();
  }
}

export default {
  async fetch(request, env): Promise<Response> {
    const { method, args } = (await request.json()) as { method: "create" | "list" | "revoke" | "authenticate" | "rawRows" | "takeRowsRead" | "appendAudit" | "auditPage"; args: unknown[] };
    const stub = env.HARNESS.get(env.HARNESS.idFromName("mesh")) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    return Response.json(await stub[method]!(...args));
  },
} satisfies ExportedHandler<Env>;
