// bookinfo "details": book facts. Reached only through its sidecar.
interface Env {
  VERSION: string;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok");
    const id = Number(/^\/details\/(\d+)$/.exec(url.pathname)?.[1] ?? NaN);
    if (!Number.isInteger(id)) return Response.json({ error: "GET /details/<id>" }, { status: 404 });
    return Response.json({
      id,
      version: env.VERSION,
      author: "William Shakespeare",
      year: 1595,
      type: "paperback",
      pages: 200,
      publisher: "PublisherA",
      language: "English",
      isbn10: "1234567890",
    });
  },
} satisfies ExportedHandler<Env>;
