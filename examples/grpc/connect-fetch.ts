// Serves Connect's router from a Worker's fetch handler: Connect, gRPC-Web and gRPC on one path per
// method (/package.Service/Method), as the universal handlers of @connectrpc/connect v2 define
// them, turned into fetch handlers by its own adapter (createFetchHandler). Nothing here is
// specific to the example service.
import { createConnectRouter, type ConnectRouter, type ConnectRouterOptions } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";

export type RpcFetchHandler = (request: Request) => Promise<Response>;

/**
 * A fetch handler for the services `register` adds to a Connect router. A path that names no
 * method gets 404, which gRPC and gRPC-Web clients read as UNIMPLEMENTED.
 *
 * Native gRPC is served too, but through fetch it is incomplete: its status travels in HTTP
 * trailers, which a Worker's Response cannot carry, so the client gets the messages and never
 * the status (see docs/grpc.md).
 */
export function connectFetchHandler(register: (router: ConnectRouter) => void, options: ConnectRouterOptions = {}): RpcFetchHandler {
  const router = createConnectRouter(options);
  register(router);
  const byPath = new Map(router.handlers.map((handler) => [handler.requestPath, createFetchHandler(handler)]));
  return async (request) => {
    const handler = byPath.get(new URL(request.url).pathname);
    if (!handler) return new Response("no such method\n", { status: 404, headers: { "content-type": "text/plain" } });
    return handler(request);
  };
}
