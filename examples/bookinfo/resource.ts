// The shape every bookinfo backend shares: GET /healthz, and GET /<collection>/<id> answered by
// `answer`; anything else is a 404 that says what is served.
export function resourceHandler<Env>(
  collection: string,
  answer: (id: number, env: Env, request: Request) => Response | Promise<Response>,
): ExportedHandler<Env> {
  const path = new RegExp(`^/${collection}/(\\d+)$`);
  return {
    fetch(request, env): Response | Promise<Response> {
      const url = new URL(request.url);
      if (url.pathname === "/healthz") return new Response("ok");
      const id = Number(path.exec(url.pathname)?.[1] ?? NaN);
      if (!Number.isInteger(id)) return Response.json({ error: `GET /${collection}/<id>` }, { status: 404 });
      return answer(id, env, request as Request);
    },
  };
}
