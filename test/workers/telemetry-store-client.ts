// Exposes the telemetry store over fetch for its integration test. Each test names its own store
// (?store=…), so tests never share state.
//   POST /ingest  JSON array of AnalyticsRow -> { stored, dropped }
//   POST /query   SQL text                   -> the store's answer
//   GET  /stats                              -> the store's stats
//   POST /retention                          -> enforces retention now (the alarm does it every minute)
import type { TelemetryStore } from "../../durable/telemetry-store.ts";

export { TelemetryStore } from "../../durable/telemetry-store.ts";

interface Env {
  TELEMETRY_STORE: DurableObjectNamespace<TelemetryStore>;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const store = env.TELEMETRY_STORE.get(env.TELEMETRY_STORE.idFromName(url.searchParams.get("store") ?? "default"));
    switch (`${request.method} ${url.pathname}`) {
      case "POST /ingest":
        return Response.json(await store.ingest(await request.json()));
      case "POST /query":
        return Response.json(await store.query(await request.text()));
      case "GET /stats":
        return Response.json(await store.stats());
      case "POST /retention":
        return Response.json(await store.enforceRetention());
      default:
        return new Response("not found", { status: 404 });
    }
  },
} satisfies ExportedHandler<Env>;
