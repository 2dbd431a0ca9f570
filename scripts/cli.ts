// The edgemesh CLI: talks to the admin API of a local or deployed control plane.
//   EDGEMESH_URL (default http://127.0.0.1:8788) and EDGEMESH_ADMIN_TOKEN (default: the local one).
// Arguments are parsed by commander; every command has its own help page (`edgemesh help <command>`).
// Exit codes: 0 done, 1 refused by the control plane (or not live, for sync), 2 a usage error or an
// unreachable control plane.
import { readFile } from "node:fs/promises";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { METRIC_SCOPES, metricLabels, type GoldenMetrics, type MetricScope } from "../analytics/golden-metrics.ts";
import { validatePolicy } from "../policies/schema.ts";
import { addCredentialCommands } from "./cli-credentials.ts";
import { addRolloutCommand } from "./cli-rollout.ts";
import { IMPORT_USAGE } from "./import.ts";

const baseUrl = process.env.EDGEMESH_URL ?? "http://127.0.0.1:8788";
const token = process.env.EDGEMESH_ADMIN_TOKEN ?? "edgemesh-local-admin-token";

function fail(message: string): never {
  console.error(`edgemesh: ${message}`);
  process.exit(2);
}

interface ApiAnswer {
  status: number;
  body: any;
}

async function api(method: string, pathname: string, init: { body?: unknown; text?: string; headers?: Record<string, string> } = {}): Promise<ApiAnswer> {
  const url = new URL(pathname, baseUrl);
  if (process.env.EDGEMESH_MESH) url.searchParams.set("mesh", process.env.EDGEMESH_MESH);
  const contentType = init.text !== undefined ? "text/plain; charset=utf-8" : "application/json";
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": contentType, ...init.headers },
      ...(init.text !== undefined ? { body: init.text } : init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
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

function refuse(res: ApiAnswer): never {
  const b = res.body;
  if (b && Array.isArray(b.errors)) {
    console.error(`edgemesh: ${b.error ?? "refused"} (HTTP ${res.status})`);
    for (const e of b.errors) console.error(`  ${e.path}: ${e.message}`);
  } else {
    const construct = b?.construct ? ` [construct: ${b.construct}]` : "";
    // The detail says what would have been accepted (e.g. the scope a route needs).
    const detail = typeof b?.detail === "string" ? `: ${b.detail}` : "";
    console.error(`edgemesh: ${b?.error ?? JSON.stringify(b)}${detail}${construct} (HTTP ${res.status})`);
  }
  process.exit(1);
}

async function readDocument(file: string): Promise<unknown> {
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

/** Option parsers: a clear usage error (exit 2) instead of NaN reaching the API. */
function integer(what: string) {
  return (raw: string): string => {
    if (!/^-?\d+$/.test(raw.trim())) throw new InvalidArgumentError(`${what} must be an integer, got "${raw}"`);
    return raw.trim();
  };
}
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A plain text table: a header row and left-aligned columns. */
function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

// ---- golden metrics: stat and top --------------------------------------------------------------

async function metrics(scope: MetricScope, window: string, source: string | undefined): Promise<{ rows: GoldenMetrics[]; body: any }> {
  const q = new URLSearchParams({ window });
  if (source) q.set("source", source);
  const res = await api("GET", `/v1/metrics/${scope}?${q}`);
  if (res.status !== 200) refuse(res);
  return { rows: res.body[scope] as GoldenMetrics[], body: res.body };
}

const fixed = (n: number, digits: number) => (Number.isInteger(n) ? String(n) : n.toFixed(digits));

function goldenTable(scope: MetricScope, rows: GoldenMetrics[]): string {
  const labels = metricLabels(scope);
  const headers = [...labels.map((l) => l.toUpperCase()), "RPS", "SUCCESS", "P50_MS", "P95_MS", "P99_MS", "RETRIES", "SHEDS", "REQUESTS"];
  return table(headers, rows.map((r) => [
    ...labels.map((l) => r.labels[l] ?? ""),
    r.requestsPerSecond.toFixed(2),
    r.successRate === null ? "-" : `${(r.successRate * 100).toFixed(2)}%`,
    fixed(r.latencyMs.p50, 1), fixed(r.latencyMs.p95, 1), fixed(r.latencyMs.p99, 1),
    fixed(r.retries, 1), fixed(r.sheds, 1), fixed(r.requests, 1),
  ]));
}

function windowOption(): Option {
  return new Option("--window <duration>", "the window the metrics cover: 30s, 1m, 5m, 1h, 7d").default("1m");
}

function sourceOption(): Option {
  return new Option("--source <where>", "local (the telemetry store) or edge (Analytics Engine); default: edge when the control plane is configured for it").choices(["local", "edge"]);
}

// ---- the commands -------------------------------------------------------------------------------

const program = new Command("edgemesh")
  .description("Operate an edgemesh service mesh through its control plane's admin API.")
  .addHelpText("after", `
Environment:
  EDGEMESH_URL          the control plane (default http://127.0.0.1:8788)
  EDGEMESH_ADMIN_TOKEN  an admin token: the bootstrap secret or one from "tokens create" (default the local one)
  EDGEMESH_MESH         a mesh other than the control plane's default

Run "edgemesh help <command>" for a command's options.`)
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`edgemesh: ${text.replace(/^error: /, "")}`) });

program
  .command("status")
  .description("active policy version, recent history, the sidecars that checked in")
  .action(async () => {
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
  });

program
  .command("import")
  .description("translate Istio, SMI and Gateway API manifests into a policy document (offline; nothing is applied)")
  .argument("<files...>", 'YAML or JSON files, one or more documents each; "-" reads stdin')
  .allowUnknownOption()
  .helpOption(false)
  .addHelpText("after", `\nThe importer's own flags:\n  ${IMPORT_USAGE}`)
  .action(async (files: string[], _o: unknown, command: { args: string[] }) => {
    // The importer parses its own flags (--base, --mesh, --service-account, --out, --json); see scripts/import.ts.
    const { runImportCommand } = await import("./import.ts");
    process.exitCode = await runImportCommand(command.args.length > 0 ? command.args : files);
  });

program
  .command("validate")
  .description("check a policy document locally (no server needed), every error with its path")
  .argument("<file>", "the policy document (JSON)")
  .action(async (file: string) => {
    const result = validatePolicy(await readDocument(file));
    if (result.ok) {
      console.log(`${file}: valid (mesh "${result.document.mesh}", ${Object.keys(result.document.services).length} services)`);
      return;
    }
    console.error(`${file}: ${result.errors.length} error(s)`);
    for (const e of result.errors) console.error(`  ${e.path}: ${e.message}`);
    process.exit(1);
  });

program
  .command("apply")
  .description("apply a policy document; the active one stays in force if it is refused")
  .argument("<file>", "the policy document (JSON)")
  .option("--expect <version>", "refuse unless this version is active (two operators cannot overwrite each other)", integer("--expect"))
  .option("--message <text>", "why, kept in the history (who: the name of your admin token)")
  .action(async (file: string, o: { expect?: string; message?: string }) => {
    const headers: Record<string, string> = {};
    if (o.expect !== undefined) headers["if-match"] = `"${o.expect}"`;
    if (o.message !== undefined) headers["x-edgemesh-message"] = o.message;
    const res = await api("POST", "/v1/policy", { body: await readDocument(file), headers });
    if (res.status !== 201) refuse(res);
    console.log(`applied ${file} as version ${res.body.version}`);
  });

program
  .command("get")
  .description("print the active (or a given) policy document")
  .argument("[version]", "a policy version", integer("version"))
  .action(async (version?: string) => {
    const res = await api("GET", version ? `/v1/policy/${version}` : "/v1/policy");
    if (res.status !== 200) refuse(res);
    print(res.body.document);
  });

program
  .command("history")
  .description("list policy versions: who, when, apply or rollback")
  .option("--limit <n>", "how many versions", integer("--limit"), "20")
  .action(async (o: { limit: string }) => {
    const res = await api("GET", `/v1/policy/history?limit=${encodeURIComponent(o.limit)}`);
    if (res.status !== 200) refuse(res);
    for (const v of res.body.versions) {
      const active = v.version === res.body.activeVersion ? "*" : " ";
      const what = v.kind === "rollback" ? `rollback to ${v.restoredVersion}` : "apply";
      console.log(`${active} v${v.version}  ${when(v.appliedAtMs)}  ${v.author}  ${what}${v.message ? `  "${v.message}"` : ""}`);
    }
  });

program
  .command("diff")
  .description("every changed, added and removed field between two versions, by JSON path")
  .argument("<from>", "the version to diff from", integer("from"))
  .argument("[to]", "the version to diff to (default the active one)", integer("to"))
  .action(async (from: string, to?: string) => {
    const res = await api("GET", `/v1/policy/diff?from=${encodeURIComponent(from)}${to ? `&to=${encodeURIComponent(to)}` : ""}`);
    if (res.status !== 200) refuse(res);
    if (res.body.changes.length === 0) console.log(`v${res.body.from} and v${res.body.to} are the same`);
    for (const c of res.body.changes) {
      if (c.op === "added") console.log(`+ ${c.path}: ${JSON.stringify(c.to)}`);
      else if (c.op === "removed") console.log(`- ${c.path}: ${JSON.stringify(c.from)}`);
      else console.log(`~ ${c.path}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`);
    }
  });

program
  .command("rollback")
  .description("re-apply an earlier version as a new version (history is never rewritten)")
  .option("--to <version>", "the version to restore (default the one before the active one)", integer("--to"))
  .option("--expect <version>", "refuse unless this version is active", integer("--expect"))
  .action(async (o: { to?: string; expect?: string }) => {
    const res = await api("POST", `/v1/policy/rollback${o.to ? `?to=${encodeURIComponent(o.to)}` : ""}`, {
      headers: o.expect !== undefined ? { "if-match": `"${o.expect}"` } : {},
    });
    if (res.status !== 201) refuse(res);
    console.log(`rolled back: version ${res.body.version} is now active`);
  });

program
  .command("registry")
  .description("services and their endpoints, declared and registered, leases, exclusions and conflicts")
  .action(async () => print((await api("GET", "/v1/registry")).body));

program
  .command("register")
  .description("register an instance with a lease; renew it with heartbeat")
  .argument("<service>")
  .argument("<id>", "the instance's endpoint id")
  .option("--binding <name>", "a service binding of the sidecar that reaches the instance")
  .option("--url <url>", "an origin URL that reaches the instance")
  .option("--label <key=value>", "a label (repeatable)", collect)
  .option("--weight <w>", "relative weight within its subsets", integer("--weight"))
  .option("--lease-ms <ms>", "lease length (default the service's registration.leaseTtlMs)", integer("--lease-ms"))
  .action(async (service: string, id: string, o: { binding?: string; url?: string; label?: string[]; weight?: string; leaseMs?: string }) => {
    if ((o.binding === undefined) === (o.url === undefined)) fail("give exactly one of --binding B or --url U");
    const labels: Record<string, string> = {};
    for (const label of o.label ?? []) {
      const eq = label.indexOf("=");
      if (eq <= 0) fail(`--label takes key=value, got "${label}"`);
      labels[label.slice(0, eq)] = label.slice(eq + 1);
    }
    const body: Record<string, unknown> = { id, labels };
    if (o.binding !== undefined) body.binding = o.binding;
    if (o.url !== undefined) body.url = o.url;
    if (o.weight !== undefined) body.weight = Number(o.weight);
    if (o.leaseMs !== undefined) body.leaseTtlMs = Number(o.leaseMs);
    const res = await api("POST", `/v1/registry/${encodeURIComponent(service)}`, { body });
    if (res.status !== 201) refuse(res);
    console.log(`registered ${service}/${id} until ${when(res.body.expiresAtMs)} (lease ${res.body.leaseTtlMs} ms, generation ${res.body.generation})`);
    for (const c of res.body.conflicts ?? []) console.log(`  conflict: ${JSON.stringify(c)}`);
  });

program
  .command("heartbeat")
  .description("renew a registered instance's lease; a lapsed lease removes it from every snapshot")
  .argument("<service>")
  .argument("<id>")
  .option("--lease-ms <ms>", "the new lease length", integer("--lease-ms"))
  .action(async (service: string, id: string, o: { leaseMs?: string }) => {
    const res = await api("POST", `/v1/registry/${encodeURIComponent(service)}/${encodeURIComponent(id)}/heartbeat`, {
      body: o.leaseMs !== undefined ? { leaseTtlMs: Number(o.leaseMs) } : {},
    });
    if (res.status !== 200) refuse(res);
    console.log(`lease of ${service}/${id} renewed until ${when(res.body.expiresAtMs)}`);
  });

program
  .command("deregister")
  .description("remove a registered instance now")
  .argument("<service>")
  .argument("<id>")
  .action(async (service: string, id: string) => {
    const res = await api("DELETE", `/v1/registry/${encodeURIComponent(service)}/${encodeURIComponent(id)}`);
    if (res.status !== 200) refuse(res);
    console.log(`deregistered ${service}/${id}`);
  });

program
  .command("health")
  .description("active and passive health of every endpoint, and which are excluded")
  .argument("[service]")
  .action(async (service?: string) => {
    const res = await api("GET", `/v1/health${service ? `?service=${encodeURIComponent(service)}` : ""}`);
    if (res.status !== 200) refuse(res);
    for (const e of res.body.endpoints) {
      const active = e.active ? `active ${e.active.state} (${e.active.consecutiveOk} ok / ${e.active.consecutiveFail} failed in a row)` : "no active checks";
      const passive = e.passive?.ejectedUntilMs ? `, passively ejected until ${when(e.passive.ejectedUntilMs)}: ${e.passive.reason}` : "";
      console.log(`${e.excluded ? "OUT" : "in "}  ${`${e.service}/${e.endpointId}`.padEnd(28)} ${active}${passive}`);
    }
  });

program
  .command("health-history")
  .description("every health transition with its time, source and reason")
  .argument("[service]")
  .option("--endpoint <id>", "only this endpoint")
  .option("--limit <n>", "how many transitions", integer("--limit"), "50")
  .action(async (service: string | undefined, o: { endpoint?: string; limit: string }) => {
    const q = new URLSearchParams({ limit: o.limit });
    if (service) q.set("service", service);
    if (o.endpoint) q.set("endpoint", o.endpoint);
    const res = await api("GET", `/v1/health/history?${q}`);
    if (res.status !== 200) refuse(res);
    for (const t of res.body.transitions) console.log(`${when(t.atMs)}  ${t.service}/${t.endpointId}  ${t.source}  ${t.from} -> ${t.to}  ${t.reason}`);
  });

program
  .command("sync")
  .description('"is my change live everywhere?": every sidecar and the generation it serves; exit 1 when not live')
  .option("--generation <g>", "the generation to check (default the current one)", integer("--generation"))
  .action(async (o: { generation?: string }) => {
    const res = await api("GET", `/v1/sync${o.generation ? `?generation=${encodeURIComponent(o.generation)}` : ""}`);
    if (res.status !== 200) refuse(res);
    const b = res.body;
    console.log(`generation ${b.targetGeneration} (policy v${b.policyVersion}) live everywhere: ${b.live ? "yes" : "NO"}`);
    for (const s of b.sidecars) {
      console.log(`  ${s.state.padEnd(7)} ${s.service.padEnd(14)} isolate ${String(s.isolateId).slice(0, 8)}  colo ${s.colo}  generation ${s.generation}  seen ${s.lastSeenAgoMs} ms ago`);
    }
    if (!b.live) console.log(`laggards: ${b.laggards.join(", ")}`);
    console.log(`control plane: ${Number(b.snapshotCallsPerSecond).toFixed(1)} snapshot calls/s from these sidecars`);
    if (!b.live) process.exit(1);
  });

interface EventOptions {
  since?: string;
  types?: string;
  limit: string;
}

async function events(o: EventOptions, follow: boolean): Promise<void> {
  let since = o.since;
  const show = (e: { seq: number; atMs: number; type: string; data: unknown }) => console.log(`#${e.seq}  ${when(e.atMs)}  ${e.type.padEnd(22)} ${JSON.stringify(e.data)}`);
  const page = async () => {
    const q = new URLSearchParams({ limit: o.limit });
    if (since !== undefined) q.set("since", since);
    if (o.types) q.set("types", o.types);
    const res = await api("GET", `/v1/events?${q}`);
    if (res.status !== 200) refuse(res);
    for (const e of res.body.events) show(e);
    const last = res.body.events.at(-1);
    // nextSince skips events the type filter passed over; older control planes lack it.
    since = String(res.body.nextSince ?? (last ? last.seq : (since ?? res.body.latestSeq)));
  };
  await page();
  if (!follow) return;
  // Node 20 has no WebSocket client without a flag, so the CLI follows /v1/events by sequence
  // number: resumable and gap-free like the /v1/watch stream.
  console.error(`watching from #${since} (Ctrl-C stops; resume with --since ${since})`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    await page();
  }
}

for (const [name, follow, description] of [
  ["events", false, "the event log: policy applied/rolled back, endpoint registered/expired, health changed, rollout steps"],
  ["watch", true, "follow the event log live; resuming with the last sequence number misses nothing"],
] as const) {
  program
    .command(name)
    .description(description)
    .option("--since <seq>", "only events after this sequence number", integer("--since"))
    .option("--types <t1,t2>", "only these event types")
    .option("--limit <n>", "events per page", integer("--limit"), "500")
    .action((o: EventOptions) => events(o, follow));
}

program
  .command("snapshot")
  .description("the compiled snapshot a sidecar of <service> receives")
  .argument("<service>")
  .action(async (service: string) => {
    const res = await api("GET", `/v1/snapshot/${encodeURIComponent(service)}`);
    if (res.status !== 200) refuse(res);
    print(res.body);
  });

program
  .command("schema")
  .description("the policy JSON Schema")
  .action(async () => print((await api("GET", "/v1/schema")).body));

program
  .command("stat")
  .description("golden metrics over a window: request rate, success rate, p50/p95/p99 latency, retries, sheds")
  .argument("[scope]", "services (by destination), edges (source -> destination) or routes", "services")
  .addOption(windowOption())
  .addOption(sourceOption())
  .option("--json", "print the API's JSON answer")
  .addHelpText("after", "\nExample:\n  edgemesh stat edges --window 5m")
  .action(async (scope: string, o: { window: string; source?: string; json?: boolean }) => {
    if (!(METRIC_SCOPES as readonly string[]).includes(scope)) fail(`stat takes services, edges or routes, got "${scope}"`);
    const { rows, body } = await metrics(scope as MetricScope, o.window, o.source);
    if (o.json) return print(body);
    if (rows.length === 0) return console.log(`no requests in the last ${o.window} (source: ${body.source})`);
    console.log(goldenTable(scope as MetricScope, rows));
  });

program
  .command("top")
  .description("the busiest routes and edges, refreshed live (Ctrl-C stops)")
  .addOption(windowOption())
  .addOption(sourceOption())
  .option("--interval <seconds>", "seconds between refreshes", integer("--interval"), "2")
  .option("--limit <n>", "rows per table", integer("--limit"), "10")
  .option("--iterations <n>", "stop after this many refreshes (default: until Ctrl-C)", integer("--iterations"))
  .option("--json", "one JSON object per refresh instead of tables")
  .action(async (o: { window: string; source?: string; interval: string; limit: string; iterations?: string; json?: boolean }) => {
    const limit = Number(o.limit);
    const clear = process.stdout.isTTY && !o.json;
    for (let i = 0; o.iterations === undefined || i < Number(o.iterations); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Number(o.interval) * 1000));
      const [routes, edges] = await Promise.all([metrics("routes", o.window, o.source), metrics("edges", o.window, o.source)]);
      const busiest = (rows: GoldenMetrics[]) => [...rows].sort((a, b) => b.requestsPerSecond - a.requestsPerSecond).slice(0, limit);
      if (o.json) {
        console.log(JSON.stringify({ atMs: Date.now(), window: o.window, routes: busiest(routes.rows), edges: busiest(edges.rows) }));
        continue;
      }
      if (clear) process.stdout.write("\x1b[2J\x1b[H");
      console.log(`edgemesh top: busiest over the last ${o.window}, ${new Date().toISOString()} (source: ${routes.body.source})\n`);
      console.log(routes.rows.length ? goldenTable("routes", busiest(routes.rows)) : "no requests on any route");
      console.log("");
      console.log(edges.rows.length ? goldenTable("edges", busiest(edges.rows)) : "no requests on any edge");
    }
  });

program
  .command("query")
  .description("run an Analytics Engine SQL query, locally or at the edge; the same text works in both")
  .argument("<sql>", "the query, e.g. \"SELECT blob3 AS service, count() AS n FROM edgemesh_requests GROUP BY service\"")
  .addOption(sourceOption())
  .option("--json", "print the answer as JSON (meta, data, rows)")
  .action(async (sql: string, o: { source?: string; json?: boolean }) => {
    const res = await api("POST", `/v1/analytics/sql${o.source ? `?source=${o.source}` : ""}`, { text: sql });
    if (res.status !== 200) refuse(res);
    if (o.json) return print(res.body);
    const names: string[] = (res.body.meta ?? []).map((m: { name: string }) => m.name);
    const data: Record<string, unknown>[] = res.body.data ?? [];
    if (names.length === 0 && data[0]) names.push(...Object.keys(data[0]));
    console.log(table(names, data.map((row) => names.map((n) => (row[n] === null || row[n] === undefined ? "" : String(row[n]))))));
    console.log(`(${res.body.rows ?? data.length} row${(res.body.rows ?? data.length) === 1 ? "" : "s"})`);
  });

program
  .command("deploy")
  .description("generate every Worker's wrangler config from a mesh description and run wrangler deploy in order")
  .argument("[description]", "the deploy description (JSON), which names the policy document", "mesh.deploy.json")
  .option("--dry-run", "bundle every Worker with wrangler deploy --dry-run instead (offline, nothing is uploaded)")
  .option("--out <dir>", "where the generated configs go (default .edgemesh/deploy/<mesh>)")
  .option("--only <names>", "deploy only these: control, a service (its sidecar and Workers) or a Worker; comma-separated or repeated", collect)
  .addHelpText("after", `
Order: the control Worker, then service by service (callees first) the service's Workers and its
sidecar. Required secrets must be set first: without them nothing is deployed, and the
\`wrangler secret put\` commands to run are printed (names only, never values). See docs/deploy.md.

Examples:
  edgemesh deploy policies/bookinfo.deploy.json --dry-run
  edgemesh deploy policies/bookinfo.deploy.json --only reviews`)
  .action(async (description: string, o: { dryRun?: boolean; out?: string; only?: string[] }) => {
    const { runDeploy } = await import("./deploy/command.ts");
    const only = o.only?.flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
    process.exitCode = await runDeploy({ description, dryRun: o.dryRun ?? false, ...(o.out ? { out: o.out } : {}), ...(only?.length ? { only } : {}) });
  });

addRolloutCommand(program, { api, refuse, when });
addCredentialCommands(program, { api, refuse, fail, table, when });

try {
  if (process.argv.length <= 2) program.outputHelp();
  else await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version end with code 0; every other parse error is a usage error.
    process.exit(err.exitCode === 0 || err.code === "commander.helpDisplayed" || err.code === "commander.help" ? 0 : 2);
  }
  throw err;
}
