// A stand-in for the sidecar's gRPC stages, running the real modules of workers/sidecar/grpc/ in
// workerd until they are wired into the sidecar's pipeline: recognise the call, answer native gRPC
// and mesh errors in the caller's protocol, apply and propagate the deadline, inspect the
// upstream's answer for its gRPC status without holding the stream back. Driven by headers:
//   x-probe-mesh-error: "<status> <reason header> <reason>"  answer as the sidecar would have
//   x-probe-route-timeout-ms: <ms>  the route's timeoutMs (default 15000)
//   x-probe-enforce: 0              do not enforce the deadline here (only propagate it)
//   x-probe-peek: 1                 peek the body for an early status
//   x-probe-id: <id>                keep the final status for GET /__probe/final?id=<id>
import { toCallerProtocol, grpcNativeUnsupported } from "../../workers/sidecar/grpc/errors.ts";
import { remainingTimeoutHeader, requestedTimeout, rpcDeadline } from "../../workers/sidecar/grpc/deadline.ts";
import { inspectRpcResponse } from "../../workers/sidecar/grpc/inspect.ts";
import { detectRpc } from "../../workers/sidecar/grpc/protocol.ts";
import type { RpcStatus } from "../../workers/sidecar/grpc/status.ts";
import { meshError } from "../../workers/sidecar/responses.ts";

interface Env {
  UPSTREAM: Fetcher;
}

const finals = new Map<string, Promise<RpcStatus>>();

async function finalStatus(id: string): Promise<Response> {
  const final = finals.get(id);
  if (!final) return Response.json({ error: `no call with x-probe-id ${id}` }, { status: 404 });
  const status = await Promise.race([final, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000))]);
  finals.delete(id);
  return Response.json(status ?? { error: "no final status within 5 s" });
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const startedMs = Date.now();
    const url = new URL(request.url);
    if (url.pathname === "/__probe/final") return finalStatus(url.searchParams.get("id") ?? "");
    const call = detectRpc(request.method, url.pathname, url.search, request.headers);
    if (!call) return new Response("not an RPC\n", { status: 400 });
    if (call.protocol === "grpc") return grpcNativeUnsupported(call);

    const meshErr = request.headers.get("x-probe-mesh-error");
    if (meshErr) {
      const [status, header, reason] = meshErr.split(" ");
      return toCallerProtocol(call, meshError(Number(status), header!, reason!, { probe: "yes" }));
    }

    const routeTimeoutMs = Number(request.headers.get("x-probe-route-timeout-ms") ?? 15_000);
    const deadline = rpcDeadline(requestedTimeout(call.protocol, request.headers), routeTimeoutMs);
    const headers = new Headers(request.headers);
    let propagated = "";
    if (deadline.propagate) {
      const header = remainingTimeoutHeader(call.protocol, startedMs + deadline.timeoutMs - Date.now());
      if (!header) return toCallerProtocol(call, meshError(504, "x-edgemesh-timeout", "deadline-exceeded"));
      headers.set(header[0], header[1]);
      propagated = `${header[0]}: ${header[1]}`;
    }
    const upstream = env.UPSTREAM.fetch(new Request(request.url, { method: request.method, headers, body: request.body }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = request.headers.get("x-probe-enforce") === "0"
      ? new Promise<never>(() => {})
      : new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.max(0, startedMs + deadline.timeoutMs - Date.now()))));
    const first = await Promise.race([upstream, timedOut]);
    clearTimeout(timer);
    if (first === "timeout") return toCallerProtocol(call, meshError(504, "x-edgemesh-timeout", "route-timeout", { timeoutMs: deadline.timeoutMs }));

    const inspection = await inspectRpcResponse(call, first, { peek: request.headers.get("x-probe-peek") === "1" });
    const id = request.headers.get("x-probe-id");
    if (id) finals.set(id, inspection.final);
    ctx.waitUntil(inspection.final);
    const response = new Response(inspection.response.body, inspection.response);
    response.headers.set("x-probe-protocol", call.protocol);
    response.headers.set("x-probe-early", inspection.early ? `${inspection.early.code} ${inspection.early.source}` : "");
    response.headers.set("x-probe-propagated", propagated);
    return response;
  },
} satisfies ExportedHandler<Env>;
