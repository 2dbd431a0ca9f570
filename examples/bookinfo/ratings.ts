// bookinfo "ratings": star ratings per reviewer. Reached only through its sidecar.
interface Env {
  VERSION: string;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok");
    const id = Number(/^\/ratings\/(\d+)$/.exec(url.pathname)?.[1] ?? NaN);
    if (!Number.isInteger(id)) return Response.json({ error: "GET /ratings/<id>" }, { status: 404 });
    return Response.json({ id, version: env.VERSION, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  },
} satisfies ExportedHandler<Env>;
