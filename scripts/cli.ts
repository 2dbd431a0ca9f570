// The edgemesh CLI: talks to the admin API of a local or deployed control plane.
//   EDGEMESH_URL (default http://127.0.0.1:8788) and EDGEMESH_ADMIN_TOKEN (default: the local one).
import { readFile } from "node:fs/promises";
import { validatePolicy } from "../policies/schema.ts";

const USAGE = `usage: edgemesh <command> [args]

  status                         active policy version, recent history, sidecars seen
  validate <file.json>           check a policy document locally (no server needed), every error with its path
  apply <file.json> [--expect N] apply a policy; --expect refuses it unless version N is active
                                 [--message "why"] [--author name]
  get [version]                  print the active (or given) policy document
  history [--limit N]            list policy versions
  diff <from> [to]               what changed between two versions (to defaults to the active one)
  rollback [--to N] [--expect N] re-apply an earlier version (default: the one before the active one)
  registry                       services and their endpoints, declared and registered, and conflicts
  register <service> <id> (--binding B | --url U) [--label k=v ...] [--weight W] [--lease-ms T]
                                 register an instance with a lease; renew it with heartbeat
  heartbeat <service> <id> [--lease-ms T]
  deregister <service> <id>
  health [service]               active and passive health of every endpoint
  health-history [service] [--endpoint id] [--limit N]
  sync [--generation G]          is the current change live on every sidecar? names the laggards; exit 1 if not
  events [--since SEQ] [--types t1,t2] [--limit N]
  watch [--since SEQ] [--types t1,t2]
                                 follow the event stream (policy, registry, health, snapshots), resuming from SEQ
  snapshot <service>             the compiled snapshot a sidecar of <service> receives
  schema                         the policy JSON Schema

environment: EDGEMESH_URL (default http://127.0.0.1:8788), EDGEMESH_ADMIN_TOKEN, EDGEMESH_MESH (optional mesh name)`;

const baseUrl = process.env.EDGEMESH_URL ?? "http://127.0.0.1:8788";
const token = process.env.EDGEMESH_ADMIN_TOKEN ?? "edgemesh-local-admin-token";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const value = args[i + 1];
  if (value === undefined) fail(`--${name} needs a value`);
  args.splice(i, 2);
  return value;
}

function fail(message: string): never {
  console.error(`edgemesh: ${message}`);
  process.exit(2);
}

async function api(method: string, pathname: string, init: { body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
  const url = new URL(pathname, baseUrl);
  if (process.env.EDGEMESH_MESH) url.searchParams.set("mesh", process.env.EDGEMESH_MESH);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  } catch (err) {
    fail(`cannot reach the control plane at ${baseUrl} (${(err as Error).cause ?? (err as Error).message}); is \`npm start\` running, or is EDGEMESH_URL right?`);
  }
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body };
}

function print(value: unknown): void {
  console.log(typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

function refuse(res: { status: number; body: any }): never {
  const b = res.body;
  if (b && Array.isArray(b.errors)) {
    console.error(`edgemesh: ${b.error ?? "refused"} (HTTP ${res.status})`);
    for (const e of b.errors) console.error(`  ${e.path}: ${e.message}`);
  } else {
    console.error(`edgemesh: ${b?.error ?? JSON.stringify(b)} (HTTP ${res.status})`);
  }
  process.exit(1);
}

async function readDocument(file: string | undefined): Promise<unknown> {
  if (!file) fail("give a policy file, e.g. policies/bookinfo.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    fail(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    fail(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const when = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case "validate": {
      const result = validatePolicy(await readDocument(args[0]));
      if (result.ok) {
        console.log(`${args[0]}: valid (mesh "${result.document.mesh}", ${Object.keys(result.document.services).length} services)`);
        return;
      }
      console.error(`${args[0]}: ${result.errors.length} error(s)`);
      for (const e of result.errors) console.error(`  ${e.path}: ${e.message}`);
      process.exit(1);
    }
    case "apply": {
      const expect = flag(args, "expect");
      const message = flag(args, "message");
      const author = flag(args, "author") ?? process.env.USER ?? "cli";
      const headers: Record<string, string> = { "x-edgemesh-author": author };
      if (expect !== undefined) headers["if-match"] = `"${expect}"`;
      if (message !== undefined) headers["x-edgemesh-message"] = message;
      const res = await api("POST", "/v1/policy", { body: await readDocument(args[0]), headers });
      if (res.status !== 201) refuse(res);
      console.log(`applied ${args[0]} as version ${res.body.version}`);
      return;
    }
    case "get": {
      const res = await api("GET", args[0] ? `/v1/policy/${args[0]}` : "/v1/policy");
      if (res.status !== 200) refuse(res);
      print(res.body.document);
      return;
    }
    case "history": {
      const limit = flag(args, "limit") ?? "20";
      const res = await api("GET", `/v1/policy/history?limit=${encodeURIComponent(limit)}`);
      if (res.status !== 200) refuse(res);
      for (const v of res.body.versions) {
        const active = v.version === res.body.activeVersion ? "*" : " ";
        const what = v.kind === "rollback" ? `rollback to ${v.restoredVersion}` : "apply";
        console.log(`${active} v${v.version}  ${when(v.appliedAtMs)}  ${v.author}  ${what}${v.message ? `  "${v.message}"` : ""}`);
      }
      return;
    }
    case "diff": {
      if (!args[0]) fail("give the version to diff from: edgemesh diff <from> [to]");
      const res = await api("GET", `/v1/policy/diff?from=${encodeURIComponent(args[0])}${args[1] ? `&to=${encodeURIComponent(args[1])}` : ""}`);
      if (res.status !== 200) refuse(res);
      if (res.body.changes.length === 0) console.log(`v${res.body.from} and v${res.body.to} are the same`);
      for (const c of res.body.changes) {
        if (c.op === "added") console.log(`+ ${c.path}: ${JSON.stringify(c.to)}`);
        else if (c.op === "removed") console.log(`- ${c.path}: ${JSON.stringify(c.from)}`);
        else console.log(`~ ${c.path}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`);
      }
      return;
    }
    case "rollback": {
      const to = flag(args, "to");
      const expect = flag(args, "expect");
      const res = await api("POST", `/v1/policy/rollback${to ? `?to=${encodeURIComponent(to)}` : ""}`, {
        headers: expect !== undefined ? { "if-match": `"${expect}"` } : {},
      });
      if (res.status !== 201) refuse(res);
      console.log(`rolled back: version ${res.body.version} is now active`);
      return;
    }
    case "status": {
      const [policy, history, sidecars] = await Promise.all([api("GET", "/v1/policy"), api("GET", "/v1/policy/history?limit=5"), api("GET", "/v1/sidecars")]);
      if (policy.status === 404) console.log("no policy applied yet");
      else if (policy.status !== 200) refuse(policy);
      else console.log(`active policy: version ${policy.body.version}, applied ${when(policy.body.appliedAtMs)} by ${policy.body.author}`);
      if (history.status === 200 && history.body.versions.length > 1) {
        console.log(`recent versions: ${history.body.versions.map((v: { version: number }) => `v${v.version}`).join(" ")}`);
      }
      if (sidecars.status === 200) {
        const list = Array.isArray(sidecars.body) ? sidecars.body : (sidecars.body.sidecars ?? []);
        console.log(`sidecars seen: ${list.length}`);
        for (const s of list) console.log(`  ${s.service.padEnd(14)} isolate ${String(s.isolateId).slice(0, 8)}  colo ${s.colo}  generation ${s.generation}  last seen ${when(s.lastSeenMs)}`);
      }
      return;
    }
    case "registry":
      return print((await api("GET", "/v1/registry")).body);
    case "register": {
      const [service, id] = args;
      if (!service || !id) fail("usage: edgemesh register <service> <id> (--binding B | --url U) [--label k=v ...]");
      const binding = flag(args, "binding");
      const url = flag(args, "url");
      const weight = flag(args, "weight");
      const lease = flag(args, "lease-ms");
      const labels: Record<string, string> = {};
      for (let label = flag(args, "label"); label !== undefined; label = flag(args, "label")) {
        const eq = label.indexOf("=");
        if (eq <= 0) fail(`--label takes key=value, got "${label}"`);
        labels[label.slice(0, eq)] = label.slice(eq + 1);
      }
      const body: Record<string, unknown> = { id, labels };
      if (binding !== undefined) body.binding = binding;
      if (url !== undefined) body.url = url;
      if (weight !== undefined) body.weight = Number(weight);
      if (lease !== undefined) body.leaseTtlMs = Number(lease);
      const res = await api("POST", `/v1/registry/${encodeURIComponent(service)}`, { body });
      if (res.status !== 201) refuse(res);
      console.log(`registered ${service}/${id} until ${when(res.body.expiresAtMs)} (lease ${res.body.leaseTtlMs} ms, generation ${res.body.generation})`);
      for (const c of res.body.conflicts ?? []) console.log(`  conflict: ${JSON.stringify(c)}`);
      return;
    }
    case "heartbeat": {
      const [service, id] = args;
      if (!service || !id) fail("usage: edgemesh heartbeat <service> <id> [--lease-ms T]");
      const lease = flag(args, "lease-ms");
      const res = await api("POST", `/v1/registry/${encodeURIComponent(service)}/${encodeURIComponent(id)}/heartbeat`, {
        body: lease !== undefined ? { leaseTtlMs: Number(lease) } : {},
      });
      if (res.status !== 200) refuse(res);
      console.log(`lease of ${service}/${id} renewed until ${when(res.body.expiresAtMs)}`);
      return;
    }
    case "deregister": {
      const [service, id] = args;
      if (!service || !id) fail("usage: edgemesh deregister <service> <id>");
      const res = await api("DELETE", `/v1/registry/${encodeURIComponent(service)}/${encodeURIComponent(id)}`);
      if (res.status !== 200) refuse(res);
      console.log(`deregistered ${service}/${id}`);
      return;
    }
    case "health": {
      const res = await api("GET", `/v1/health${args[0] ? `?service=${encodeURIComponent(args[0])}` : ""}`);
      if (res.status !== 200) refuse(res);
      for (const e of res.body.endpoints) {
        const active = e.active ? `active ${e.active.state} (${e.active.consecutiveOk} ok / ${e.active.consecutiveFail} failed in a row)` : "no active checks";
        const passive = e.passive?.ejectedUntilMs ? `, passively ejected until ${when(e.passive.ejectedUntilMs)}: ${e.passive.reason}` : "";
        console.log(`${e.excluded ? "OUT" : "in "}  ${`${e.service}/${e.endpointId}`.padEnd(28)} ${active}${passive}`);
      }
      return;
    }
    case "health-history": {
      const endpoint = flag(args, "endpoint");
      const limit = flag(args, "limit") ?? "50";
      const q = new URLSearchParams({ limit });
      if (args[0]) q.set("service", args[0]);
      if (endpoint) q.set("endpoint", endpoint);
      const res = await api("GET", `/v1/health/history?${q}`);
      if (res.status !== 200) refuse(res);
      for (const t of res.body.transitions) console.log(`${when(t.atMs)}  ${t.service}/${t.endpointId}  ${t.source}  ${t.from} -> ${t.to}  ${t.reason}`);
      return;
    }
    case "sync": {
      const generation = flag(args, "generation");
      const res = await api("GET", `/v1/sync${generation ? `?generation=${encodeURIComponent(generation)}` : ""}`);
      if (res.status !== 200) refuse(res);
      const b = res.body;
      console.log(`generation ${b.targetGeneration} (policy v${b.policyVersion}) live everywhere: ${b.live ? "yes" : "NO"}`);
      for (const s of b.sidecars) {
        console.log(`  ${s.state.padEnd(7)} ${s.service.padEnd(14)} isolate ${String(s.isolateId).slice(0, 8)}  colo ${s.colo}  generation ${s.generation}  seen ${s.lastSeenAgoMs} ms ago`);
      }
      if (!b.live) console.log(`laggards: ${b.laggards.join(", ")}`);
      console.log(`control plane: ${Number(b.snapshotCallsPerSecond).toFixed(1)} snapshot calls/s from these sidecars`);
      if (!b.live) process.exit(1);
      return;
    }
    case "events":
    case "watch": {
      let since = flag(args, "since");
      const types = flag(args, "types");
      const limit = flag(args, "limit") ?? "500";
      const show = (e: { seq: number; atMs: number; type: string; data: unknown }) => console.log(`#${e.seq}  ${when(e.atMs)}  ${e.type.padEnd(22)} ${JSON.stringify(e.data)}`);
      const page = async () => {
        const q = new URLSearchParams({ limit });
        if (since !== undefined) q.set("since", since);
        if (types) q.set("types", types);
        const res = await api("GET", `/v1/events?${q}`);
        if (res.status !== 200) refuse(res);
        for (const e of res.body.events) show(e);
        const last = res.body.events.at(-1);
        // nextSince skips events the type filter passed over; older control planes lack it.
        since = String(res.body.nextSince ?? (last ? last.seq : (since ?? res.body.latestSeq)));
      };
      await page();
      if (command === "events") return;
      // Node 20 has no WebSocket client without a flag, so the CLI follows /v1/events by
      // sequence number: resumable and gap-free like the /v1/watch stream.
      console.error(`watching from #${since} (Ctrl-C stops; resume with --since ${since})`);
      for (;;) {
        await new Promise((r) => setTimeout(r, 500));
        await page();
      }
    }
    case "snapshot": {
      if (!args[0]) fail("give a service name");
      const res = await api("GET", `/v1/snapshot/${encodeURIComponent(args[0])}`);
      if (res.status !== 200) refuse(res);
      return print(res.body);
    }
    case "schema":
      return print((await api("GET", "/v1/schema")).body);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return;
    default:
      fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}

await main(process.argv.slice(2));
