// A test upstream whose health is switched at run time, for the control plane's health tests.
// GET /healthz answers with the current health status (200 until told otherwise);
// POST /__target?health=503 changes it, ?failing=1 makes every other request answer 503,
// ?delayMs=N delays /healthz. Any other request is answered with the endpoint id.
interface Env {
  ENDPOINT_ID: string;
}

const target = { healthStatus: 200, failing: false, delayMs: 0, healthChecks: 0 };

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/__target") {
      const q = url.searchParams;
      if (q.has("health")) target.healthStatus = Number(q.get("health"));
      if (q.has("failing")) target.failing = q.get("failing") === "1";
      if (q.has("delayMs")) target.delayMs = Number(q.get("delayMs"));
      return Response.json({ endpoint: env.ENDPOINT_ID, ...target });
    }
    if (url.pathname === "/healthz") {
      target.healthChecks++;
      if (target.delayMs > 0) await new Promise((r) => setTimeout(r, target.delayMs));
      return new Response(target.healthStatus === 200 ? "ok" : "unhealthy", { status: target.healthStatus });
    }
    const status = target.failing ? 503 : 200;
    return Response.json({ endpoint: env.ENDPOINT_ID }, { status, headers: { "x-echo-endpoint": env.ENDPOINT_ID } });
  },
} satisfies ExportedHandler<Env>;
