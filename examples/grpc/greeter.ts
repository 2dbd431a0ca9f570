// The example gRPC service as a Worker: GreeterService over Connect, gRPC-Web and gRPC, one
// Worker per instance (VERSION v1 or v2 for a canary; FAIL_CODE and DELAY_MS to misbehave, see
// greeter-service.ts). Reached through its sidecar like every service of the mesh.
import { connectFetchHandler, type RpcFetchHandler } from "./connect-fetch.ts";
import { GreeterService, greeterService } from "./greeter-service.ts";

export interface GreeterEnv {
  VERSION?: string;
  /** Set by the mesh runner and the deployment: the id the mesh knows this instance by. */
  ENDPOINT_ID?: string;
  FAIL_CODE?: string;
  DELAY_MS?: string;
}

// One router per isolate, built from the first request's env (the same for every request).
let handler: RpcFetchHandler | undefined;
let handlerEnv: GreeterEnv | undefined;

function handlerFor(env: GreeterEnv): RpcFetchHandler {
  if (handler === undefined || handlerEnv !== env) {
    handlerEnv = env;
    const instance = {
      version: env.VERSION ?? "v1",
      instance: env.ENDPOINT_ID ?? `greeter-${env.VERSION ?? "v1"}`,
      failCode: env.FAIL_CODE ?? "",
      delayMs: Number(env.DELAY_MS ?? 0) || 0,
    };
    handler = connectFetchHandler((router) => router.service(GreeterService, greeterService(instance)));
  }
  return handler;
}

export default {
  async fetch(request, env): Promise<Response> {
    if (new URL(request.url).pathname === "/healthz") return new Response("ok\n");
    return handlerFor(env)(request);
  },
} satisfies ExportedHandler<GreeterEnv>;
