// Scoped admin tokens: a control-plane component that owns its SQLite table (given the Durable
// Object's SqlStorage) and answers "which token is this, with which scope?". Tokens are 256
// random bits, shown once when created and stored only as their SHA-256. A slow password hash
// (bcrypt, scrypt, Argon2) exists to make guessing a low-entropy password from a stolen hash
// expensive; guessing a 256-bit random value is out of reach at any hashing speed, so one fast
// hash loses nothing and keeps every admin call cheap. The bootstrap token (secret
// EDGEMESH_ADMIN_TOKEN) is not stored: it has scope admin and is compared as a hash too.
import { ADMIN_SCOPES, BOOTSTRAP_TOKEN_NAME, bearerToken, timingSafeEqual, type AdminPrincipal, type AdminScope } from "../auth/admin-token.ts";
import { recordFailure, recordSuccess, throttleWaitMs, type Throttle } from "../auth/throttle.ts";
import { base64UrlEncode } from "../auth/verify.ts";

/** Every token starts with this, so secret scanners and people can tell what a leaked one is. */
export const ADMIN_TOKEN_PREFIX = "edgemesh_";
export const MAX_ADMIN_TOKENS = 1000;
/** Presented values longer than this are refused before hashing. */
const MAX_PRESENTED_CHARS = 512;
/** `lastUsedAtMs` is written at most this often per token: every admin call must not be a write. */
export const LAST_USED_RESOLUTION_MS = 60_000;
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface AdminTokenInfo {
  name: string;
  scope: AdminScope;
  createdAtMs: number;
  /** The name of the token that created it. */
  createdBy: string;
  /** Accurate to LAST_USED_RESOLUTION_MS; null when never used. */
  lastUsedAtMs: number | null;
  expiresAtMs: number | null;
}

export type CreateTokenResult =
  | { ok: true; token: string; info: AdminTokenInfo }
  | { ok: false; reason: "invalid" | "exists" | "too-many"; message: string };

type Row = {
  name: string;
  scope: string;
  created_at_ms: number;
  created_by: string;
  last_used_at_ms: number | null;
  expires_at_ms: number | null;
};

const infoOf = (r: Row): AdminTokenInfo => ({
  name: r.name,
  scope: r.scope as AdminScope,
  createdAtMs: r.created_at_ms,
  createdBy: r.created_by,
  lastUsedAtMs: r.last_used_at_ms,
  expiresAtMs: r.expires_at_ms,
});

async function sha256Hex(value: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value)));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

export class AdminTokens {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS admin_tokens (
      name TEXT PRIMARY KEY,
      scope TEXT NOT NULL,
      token_sha256 TEXT NOT NULL UNIQUE,
      created_at_ms INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      last_used_at_ms INTEGER,
      expires_at_ms INTEGER
    )`);
  }

  /** Makes a token; its value is in the answer and nowhere else, ever. */
  async create(input: { name: string; scope: AdminScope; createdBy: string; ttlMs?: number }, nowMs: number): Promise<CreateTokenResult> {
    if (!NAME.test(input.name) || input.name === BOOTSTRAP_TOKEN_NAME) {
      return { ok: false, reason: "invalid", message: `a token name is lowercase letters, digits and '-', 1-63 characters, and not "${BOOTSTRAP_TOKEN_NAME}"` };
    }
    if (!ADMIN_SCOPES.includes(input.scope)) return { ok: false, reason: "invalid", message: `scope must be one of ${ADMIN_SCOPES.join(", ")}` };
    if (input.ttlMs !== undefined && (!Number.isSafeInteger(input.ttlMs) || input.ttlMs < 60_000)) {
      return { ok: false, reason: "invalid", message: "ttlMs must be a whole number of ms, at least 60000" };
    }
    this.sql.exec("DELETE FROM admin_tokens WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?", nowMs);
    if (this.sql.exec("SELECT 1 FROM admin_tokens WHERE name = ?", input.name).toArray().length > 0) {
      return { ok: false, reason: "exists", message: `a token named "${input.name}" exists; revoke it first or pick another name` };
    }
    const count = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM admin_tokens").one().n;
    if (count >= MAX_ADMIN_TOKENS) return { ok: false, reason: "too-many", message: `at most ${MAX_ADMIN_TOKENS} admin tokens; revoke unused ones` };

    const token = ADMIN_TOKEN_PREFIX + base64UrlEncode(crypto.getRandomValues(new Uint8Array(32)));
    const expiresAtMs = input.ttlMs === undefined ? null : nowMs + input.ttlMs;
    this.sql.exec(
      "INSERT INTO admin_tokens (name, scope, token_sha256, created_at_ms, created_by, last_used_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, NULL, ?)",
      input.name, input.scope, await sha256Hex(token), nowMs, input.createdBy, expiresAtMs,
    );
    return { ok: true, token, info: { name: input.name, scope: input.scope, createdAtMs: nowMs, createdBy: input.createdBy, lastUsedAtMs: null, expiresAtMs } };
  }

  /** Names, scopes and times of the live tokens; never a value or a hash. */
  list(nowMs: number): AdminTokenInfo[] {
    return this.sql
      .exec<Row>("SELECT name, scope, created_at_ms, created_by, last_used_at_ms, expires_at_ms FROM admin_tokens WHERE expires_at_ms IS NULL OR expires_at_ms > ? ORDER BY name", nowMs)
      .toArray()
      .map(infoOf);
  }

  /** Revokes a token at once; false when there is none of that name. */
  revoke(name: string): boolean {
    return this.sql.exec("DELETE FROM admin_tokens WHERE name = ?", name).rowsWritten > 0;
  }

  /**
   * The token a presented value is, or undefined. The value is hashed and the hash looked up: the
   * time this takes depends on the hash, which tells a guesser nothing about any stored token.
   */
  async lookup(presented: string, nowMs: number, bootstrapToken?: string): Promise<AdminPrincipal | undefined> {
    if (presented.length === 0 || presented.length > MAX_PRESENTED_CHARS) return undefined;
    const hash = await sha256Hex(presented);
    // The bootstrap secret is compared by hash too: equal-length values, so no length leaks.
    if (bootstrapToken && timingSafeEqual(hash, await sha256Hex(bootstrapToken))) return { name: BOOTSTRAP_TOKEN_NAME, scope: "admin" };
    const row = this.sql
      .exec<Row>("SELECT name, scope, created_at_ms, created_by, last_used_at_ms, expires_at_ms FROM admin_tokens WHERE token_sha256 = ?", hash)
      .toArray()[0];
    if (!row || (row.expires_at_ms !== null && row.expires_at_ms <= nowMs)) return undefined;
    if (row.last_used_at_ms === null || nowMs - row.last_used_at_ms >= LAST_USED_RESOLUTION_MS) {
      this.sql.exec("UPDATE admin_tokens SET last_used_at_ms = ? WHERE name = ?", nowMs, row.name);
    }
    return { name: row.name, scope: row.scope as AdminScope };
  }
}

export type AdminAuthResult =
  | { ok: true; principal: AdminPrincipal }
  | { ok: false; status: 401; reason: "missing-token" | "unknown-token" }
  | { ok: false; status: 429; reason: "too-many-failures"; retryAfterMs: number };

/**
 * Authenticates one admin call: a client locked out by earlier failures gets 429 before its token
 * is looked at; a wrong token counts as a failure of its client (a missing one does not: it
 * guesses nothing); a valid one clears them.
 */
export async function authenticateAdmin(
  request: { authorization: string | null | undefined; clientKey: string; nowMs: number; bootstrapToken: string | undefined },
  tokens: AdminTokens,
  throttle: Throttle,
): Promise<AdminAuthResult> {
  const waitMs = throttleWaitMs(throttle, request.clientKey, request.nowMs);
  if (waitMs > 0) return { ok: false, status: 429, reason: "too-many-failures", retryAfterMs: waitMs };
  const presented = bearerToken(request.authorization);
  if (presented === undefined) return { ok: false, status: 401, reason: "missing-token" };
  const principal = await tokens.lookup(presented, request.nowMs, request.bootstrapToken);
  if (!principal) {
    recordFailure(throttle, request.clientKey, request.nowMs);
    return { ok: false, status: 401, reason: "unknown-token" };
  }
  recordSuccess(throttle, request.clientKey);
  return { ok: true, principal };
}
