// The credential commands of the edgemesh CLI (scripts/cli.ts adds them to its program):
//   tokens create|list|revoke   scoped admin tokens (the admin API, scope admin)
//   token issue|debug           mesh tokens and debug credentials, signed by the control plane
//   token keygen|public|inspect key sets and tokens, locally (no server)
//   audit                       the audit log (the admin API, scope read)
import { readFile } from "node:fs/promises";
import { Command, InvalidArgumentError } from "commander";
import { ADMIN_SCOPES } from "../auth/admin-token.ts";
import { generateMeshKey, inspectToken, KeySetError, parseKeySet, publicKeySet, type MeshKeySet } from "../auth/mesh-token.ts";

export interface CliHelpers {
  api(method: string, pathname: string, init?: { body?: unknown }): Promise<{ status: number; body: any }>;
  refuse(res: { status: number; body: any }): never;
  fail(message: string): never;
  table(headers: string[], rows: (string | number)[][]): string;
  when(ms: number): string;
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "30s", "5m", "12h", "90d" -> milliseconds (a usage error otherwise). */
export function parseDurationMs(raw: string): number {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(raw.trim());
  if (!m) throw new InvalidArgumentError(`a duration is a number and a unit (s, m, h, d), e.g. 5m or 90d; got "${raw}"`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function readKeySet(file: string, fail: CliHelpers["fail"]): Promise<MeshKeySet> {
  let text: string;
  try {
    text = file === "-" ? await readStdin() : await readFile(file, "utf8");
  } catch (err) {
    fail(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseKeySet(text, file);
  } catch (err) {
    if (err instanceof KeySetError) fail(err.message);
    throw err;
  }
}

export function addCredentialCommands(program: Command, h: CliHelpers): void {
  const tokens = program.command("tokens").description("scoped admin tokens: create, list, revoke (needs an admin token)");

  tokens
    .command("create")
    .description("make an admin token; its value is printed once and stored only as a hash")
    .argument("<name>", "lowercase letters, digits and '-': what the audit log calls it")
    .requiredOption("--scope <scope>", `${ADMIN_SCOPES.join(", ")} (each includes the ones before it)`)
    .option("--ttl <duration>", "expires after this long, e.g. 90d (default never)", parseDurationMs)
    .action(async (name: string, o: { scope: string; ttl?: number }) => {
      if (!(ADMIN_SCOPES as readonly string[]).includes(o.scope)) h.fail(`--scope must be one of ${ADMIN_SCOPES.join(", ")}, got "${o.scope}"`);
      const res = await h.api("POST", "/v1/tokens", { body: { name, scope: o.scope, ...(o.ttl !== undefined ? { ttlMs: o.ttl } : {}) } });
      if (res.status !== 201) h.refuse(res);
      console.error(`admin token "${name}" (scope ${o.scope}${res.body.expiresAtMs ? `, expires ${h.when(res.body.expiresAtMs)}` : ""}); the value below is shown this once:`);
      console.log(res.body.token);
    });

  tokens
    .command("list")
    .description("names, scopes, who made them, last use (never a value)")
    .action(async () => {
      const res = await h.api("GET", "/v1/tokens");
      if (res.status !== 200) h.refuse(res);
      const list = res.body.tokens as { name: string; scope: string; createdAtMs: number; createdBy: string; lastUsedAtMs: number | null; expiresAtMs: number | null }[];
      if (list.length === 0) return console.log("no admin tokens besides the bootstrap secret (EDGEMESH_ADMIN_TOKEN)");
      console.log(h.table(["NAME", "SCOPE", "CREATED", "BY", "LAST_USED", "EXPIRES"], list.map((t) => [
        t.name, t.scope, h.when(t.createdAtMs), t.createdBy, t.lastUsedAtMs === null ? "never" : h.when(t.lastUsedAtMs), t.expiresAtMs === null ? "never" : h.when(t.expiresAtMs),
      ])));
    });

  tokens
    .command("revoke")
    .description("revoke an admin token; it stops working with the next call")
    .argument("<name>")
    .action(async (name: string) => {
      const res = await h.api("DELETE", `/v1/tokens/${encodeURIComponent(name)}`);
      if (res.status !== 200) h.refuse(res);
      console.log(`revoked admin token "${name}"`);
    });

  const token = program.command("token").description("mesh tokens and key sets: issue, debug, keygen, public, inspect");

  token
    .command("issue")
    .description("a mesh token that lets its holder call <callee> as <caller> (signed by the control plane; needs an admin token)")
    .requiredOption("--as <caller>", "the caller it names: a service or an identity of access.identities")
    .requiredOption("--for <callee>", "the service it may call")
    .option("--ttl <duration>", "how long it is valid, e.g. 5m (at most access.tokens.maxLifetimeMs, default 24h)", parseDurationMs, 5 * 60_000)
    .addHelpText("after", "\nSend it as the x-edgemesh-token header:\n  curl -H \"x-edgemesh-token: $(edgemesh token issue --as nightly-report --for reviews)\" https://reviews.example/...")
    .action(async (o: { as: string; for: string; ttl: number }) => {
      const res = await h.api("POST", "/v1/mesh-tokens", { body: { caller: o.as, callee: o.for, ttlMs: o.ttl } });
      if (res.status !== 201) h.refuse(res);
      console.error(`mesh token: ${o.as} may call ${o.for} until ${h.when(res.body.claims.exp * 1000)} (send it as x-edgemesh-token)`);
      console.log(res.body.token);
    });

  token
    .command("debug")
    .description("a debug credential: with x-edgemesh-debug: 1, a sidecar answers with its debug headers (needs a read token)")
    .option("--for <service>", "only this service's sidecar (default every one)")
    .option("--ttl <duration>", "how long it is valid", parseDurationMs, 60 * 60_000)
    .action(async (o: { for?: string; ttl: number }) => {
      const res = await h.api("POST", "/v1/debug-tokens", { body: { ttlMs: o.ttl, ...(o.for !== undefined ? { service: o.for } : {}) } });
      if (res.status !== 201) h.refuse(res);
      console.error(`debug credential for ${o.for ?? "every service"} until ${h.when(res.body.claims.exp * 1000)}; send: -H 'x-edgemesh-debug: 1' -H 'x-edgemesh-debug-token: <it>'`);
      console.log(res.body.token);
    });

  token
    .command("keygen")
    .description("a new Ed25519 key, as a key set for EDGEMESH_TOKEN_KEYS (locally; nothing leaves this machine)")
    .option("--kid <id>", "the key id (default its RFC 7638 thumbprint)")
    .option("--add-to <file>", "print this key set (JSON file, or - for stdin) with the new key added: rotation step 1")
    .option("--status <status>", "signing, verify or retired (default signing; verify with --add-to)")
    .addHelpText("after", `
Rotation (two keys valid at once):
  1. edgemesh token keygen --add-to keys.json > next.json       # the new key as "verify", everywhere
  2. in next.json make the new key "signing" and the old one "verify"; deploy to the signers
  3. after the longest token lifetime plus the clock skew, mark the old key "retired"
Origins get the public set: edgemesh token public next.json`)
    .action(async (o: { kid?: string; addTo?: string; status?: string }) => {
      const status = (o.status ?? (o.addTo ? "verify" : "signing")) as "signing" | "verify" | "retired";
      let key;
      try {
        key = await generateMeshKey({ status, ...(o.kid !== undefined ? { kid: o.kid } : {}) });
      } catch (err) {
        if (err instanceof KeySetError) h.fail(err.message);
        throw err;
      }
      const set: MeshKeySet = o.addTo ? await readKeySet(o.addTo, h.fail) : { keys: [] };
      set.keys.push(key);
      try {
        parseKeySet(set, "the new key set");
      } catch (err) {
        if (err instanceof KeySetError) h.fail(`${err.message} (use --status verify, then switch the signing key by hand)`);
        throw err;
      }
      console.error(`new key "${key.kid}" (${status}); the key set below holds private keys: give it only to signers (wrangler secret put EDGEMESH_TOKEN_KEYS)`);
      console.log(JSON.stringify(set, null, 2));
    });

  token
    .command("public")
    .description("the public key set of a key set, without private or retired keys: for origins (EDGEMESH_TOKEN_PUBLIC_KEYS)")
    .argument("[file]", "the key set (JSON file, or - for stdin)", "-")
    .action(async (file: string) => {
      console.log(JSON.stringify(publicKeySet(await readKeySet(file, h.fail)), null, 2));
    });

  token
    .command("inspect")
    .description("the header and claims of a mesh token, decoded but NOT verified")
    .argument("<token>")
    .action((value: string) => {
      const parts = inspectToken(value.trim());
      if (!parts || typeof parts.claims !== "object" || parts.claims === null) h.fail("not a mesh token: three base64url parts of JSON joined by '.'");
      const claims = parts.claims as Record<string, unknown>;
      const time = (v: unknown) => (typeof v === "number" ? `${v} (${h.when(v * 1000)})` : String(v));
      console.log(JSON.stringify({ header: parts.header, claims }, null, 2));
      console.log(`caller ${String(claims.sub)} -> callee ${String(claims.aud)} in mesh ${String(claims.iss)}; valid ${time(claims.nbf ?? claims.iat)} to ${time(claims.exp)}${claims.fwd ? "; attached by a sidecar for an origin" : ""}${claims.dbg ? "; a debug credential" : ""}`);
      console.log("(decoded only: the signature was not checked)");
    });

  program
    .command("audit")
    .description("the audit log, newest first: which token changed what, when, from where")
    .option("--limit <n>", "how many records", "50")
    .option("--token <name>", "only this token's records")
    .option("--action <prefix>", "only actions starting with this, e.g. policy. or tokens.create")
    .option("--before <seq>", "only records older than this sequence number (paging back)")
    .option("--json", "print the API's JSON answer")
    .action(async (o: { limit: string; token?: string; action?: string; before?: string; json?: boolean }) => {
      const q = new URLSearchParams({ limit: o.limit });
      if (o.token) q.set("token", o.token);
      if (o.action) q.set("action", o.action);
      if (o.before) q.set("before", o.before);
      const res = await h.api("GET", `/v1/audit?${q}`);
      if (res.status !== 200) h.refuse(res);
      if (o.json) return console.log(JSON.stringify(res.body, null, 2));
      const records = res.body.records as { seq: number; atMs: number; mesh: string; tokenName: string; action: string; target: string; outcome: string; clientIp: string; detail: Record<string, unknown> }[];
      if (records.length === 0) return console.log("no audit records");
      console.log(h.table(["SEQ", "WHEN", "TOKEN", "ACTION", "TARGET", "OUTCOME", "MESH", "CLIENT", "DETAIL"], records.map((r) => [
        r.seq, h.when(r.atMs), r.tokenName || "-", r.action, r.target || "-", r.outcome, r.mesh, r.clientIp, JSON.stringify(r.detail),
      ])));
      if (res.body.nextBefore !== null) console.log(`(older: --before ${res.body.nextBefore})`);
    });
}
