// Shared helpers for integration tests: a running mesh and ways to call its sidecars.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GREETER_SERVICES, readPolicy, sidecarName, type RunningMesh, type Topology } from "../scripts/mesh.ts";

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** Calls a service's sidecar directly (in-process, through Miniflare). */
export async function sidecar(mesh: RunningMesh, service: string): Promise<Fetch> {
  const worker = await mesh.mf.getWorker(sidecarName(service));
  return (input, init) => worker.fetch(new URL(input, "http://mesh.test").href, init as never) as unknown as Promise<Response>;
}

/**
 * The example greeter's two versions (as `npm start` runs them) and a third instance that answers
 * every call with UNAVAILABLE: one to retry around and eject.
 */
export function greeterTopology(mesh: string): Topology {
  const broken = { id: "greeter-broken", binding: "GREETER_BROKEN", script: "grpc-greeter", vars: { VERSION: "v1", FAIL_CODE: "unavailable" } };
  return { mesh, services: { greeter: [...GREETER_SERVICES.greeter!, broken] } };
}

export async function bookinfoPolicy(): Promise<any> {
  return structuredClone(await readPolicy("policies/bookinfo.json"));
}

/** Counts which response header values `n` requests produce. */
export async function tally(call: () => Promise<Response>, n: number, header: string, concurrency = 8): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      const res = await call();
      await res.arrayBuffer();
      const key = res.headers.get(header) ?? `status-${res.status}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A plain Node HTTP server on loopback, for URL endpoints. */
export async function nodeServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export { readPolicy };
