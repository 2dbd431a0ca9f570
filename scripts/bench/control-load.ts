// bench:control's load Worker, inside workerd, bound to MeshControl (MESH_CONTROL) and the relays
// (MESH_RELAY). It plays sidecar isolates: each checks in with its own isolate id, as a real
// sidecar's snapshot cache does (knownGeneration/knownEpoch, once per TTL), either with the
// authority or with the relay of its colo (relayName/relayShard, as the sidecar picks it).
//   GET /saturate?mesh=&service=&target=authority|relay&concurrency=&ms=&gapMs=&fullEvery=
//     closed loops of check-ins as fast as they answer (or gapMs apart): check-ins/s and the
//     slowest one; fullEvery=1 asks for a full snapshot every time.
//   GET /isolates?mesh=&service=&target=&n=&ttlMs=&ms=&expectVersion=&colos=
//     n isolates, each checking in once per ttlMs at a random phase, until each serves
//     policyVersion >= expectVersion (or ms pass): when each first did, and how many calls.
//   POST /commits?mesh=&repeat=  body {a, b}: two documents (one service apart), prepared once,
//     committed alternately `repeat` times: wall time of the object's calls per commit.
import { applyDocument } from "../../workers/control/apply.ts";
import type { MeshControlApi } from "../../workers/control/common.ts";
import { relayName, relayShard } from "../../policies/distribution.ts";
import type { MeshControlRpc, ServiceSnapshot, SnapshotReply } from "../../policies/snapshot.ts";

interface Env {
  MESH_CONTROL: DurableObjectNamespace;
  MESH_RELAY: DurableObjectNamespace;
  RELAY_SHARDS: string;
}

function target(env: Env, mesh: string, service: string, colo: string, kind: string): MeshControlRpc {
  if (kind === "relay") {
    const name = relayName(mesh, "enam", relayShard(service, colo, Number(env.RELAY_SHARDS)));
    return env.MESH_RELAY.get(env.MESH_RELAY.idFromName(name), { locationHint: "enam" }) as unknown as MeshControlRpc;
  }
  return env.MESH_CONTROL.get(env.MESH_CONTROL.idFromName(mesh)) as unknown as MeshControlRpc;
}

class Isolate {
  snapshot: ServiceSnapshot | undefined;
  calls = 0;
  constructor(readonly id: string, readonly colo: string) {}

  async checkIn(rpc: MeshControlRpc, mesh: string, service: string): Promise<SnapshotReply> {
    this.calls++;
    const reply = await rpc.snapshot({
      service, mesh, isolateId: this.id, colo: this.colo,
      knownGeneration: this.snapshot?.generation ?? 0, knownPolicyVersion: this.snapshot?.policyVersion ?? 0, knownEpoch: this.snapshot?.epoch ?? "",
    });
    if (reply.status === "ok") this.snapshot = reply.snapshot;
    return reply;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function saturate(env: Env, q: URLSearchParams): Promise<Response> {
  const mesh = q.get("mesh")!;
  const service = q.get("service")!;
  const kind = q.get("target") ?? "authority";
  const concurrency = Number(q.get("concurrency") ?? 32);
  const ms = Number(q.get("ms") ?? 3000);
  const fullEvery = Number(q.get("fullEvery") ?? 0);
  const gapMs = Number(q.get("gapMs") ?? 0);
  let done = 0;
  let slowestMs = 0;
  const started = Date.now();
  const end = started + ms;
  await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    const iso = new Isolate(`sat-${i}-${crypto.randomUUID()}`, "LCL");
    const rpc = target(env, mesh, service, iso.colo, kind);
    while (Date.now() < end) {
      if (fullEvery > 0 && iso.calls % fullEvery === 0) iso.snapshot = undefined;
      const t0 = Date.now();
      await iso.checkIn(rpc, mesh, service);
      slowestMs = Math.max(slowestMs, Date.now() - t0);
      done++;
      if (gapMs > 0) await sleep(gapMs);
    }
  }));
  const seconds = (Date.now() - started) / 1000;
  return Response.json({ checkIns: done, seconds, perSecond: done / seconds, slowestMs });
}

async function isolates(env: Env, q: URLSearchParams): Promise<Response> {
  const mesh = q.get("mesh")!;
  const service = q.get("service")!;
  const kind = q.get("target") ?? "authority";
  const n = Number(q.get("n") ?? 200);
  const ttlMs = Number(q.get("ttlMs") ?? 1000);
  const ms = Number(q.get("ms") ?? 5000);
  const expect = Number(q.get("expectVersion") ?? Number.MAX_SAFE_INTEGER);
  const colos = Math.max(1, Number(q.get("colos") ?? 10));
  const started = Date.now();
  const end = started + ms;
  const firstSeenMs: (number | null)[] = Array.from({ length: n }, () => null);
  let failures = 0;
  const all = Array.from({ length: n }, (_, i) => new Isolate(`iso-${i}-${crypto.randomUUID()}`, `C${i % colos}`));
  await Promise.all(all.map(async (iso, i) => {
    const rpc = target(env, mesh, service, iso.colo, kind);
    // Isolates are not in step: each starts at its own point of the TTL.
    await sleep(Math.random() * ttlMs);
    while (Date.now() < end && firstSeenMs[i] === null) {
      const t0 = Date.now();
      try {
        await iso.checkIn(rpc, mesh, service);
      } catch {
        failures++;
      }
      if ((iso.snapshot?.policyVersion ?? 0) >= expect) firstSeenMs[i] = Date.now();
      else await sleep(Math.max(0, ttlMs - (Date.now() - t0)));
    }
  }));
  return Response.json({ firstSeenMs, calls: all.reduce((s, i) => s + i.calls, 0), failures, seconds: (Date.now() - started) / 1000 });
}

async function commits(env: Env, q: URLSearchParams, request: Request): Promise<Response> {
  const mesh = q.get("mesh")!;
  const repeat = Number(q.get("repeat") ?? 20);
  const { a, b } = (await request.json()) as { a: unknown; b: unknown };
  const stub = env.MESH_CONTROL.get(env.MESH_CONTROL.idFromName(mesh)) as unknown as MeshControlApi;
  // Count only the object's calls: validation and splitting happen in the control Worker.
  let objectMs = 0;
  const timedCall = async <T>(call: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await call();
    } finally {
      objectMs += Date.now() - t0;
    }
  };
  const timed = {
    missingPolicyPieces: (digests: string[]) => timedCall(() => stub.missingPolicyPieces(digests)),
    commitPolicy: (pieces: Parameters<MeshControlApi["commitPolicy"]>[0], options: Parameters<MeshControlApi["commitPolicy"]>[1]) => timedCall(() => stub.commitPolicy(pieces, options)),
  } as unknown as MeshControlApi;
  const changed: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const result = await applyDocument(timed, mesh, i % 2 ? a : b, { kind: "apply", author: "bench" });
    if (!result.ok) return Response.json({ error: result }, { status: 500 });
    changed.push(result.changedServices);
  }
  return Response.json({ repeat, objectMsPerCommit: objectMs / repeat, changedServices: changed });
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const q = url.searchParams;
    if (url.pathname === "/saturate") return saturate(env, q);
    if (url.pathname === "/isolates") return isolates(env, q);
    if (url.pathname === "/commits") return commits(env, q, request);
    return new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
