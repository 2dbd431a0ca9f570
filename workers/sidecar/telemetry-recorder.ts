// Turns a finished request into a record and hands it to this isolate's sink: sampling, outcome,
// and, when the policy asks for it, a count of the bytes of a response whose size no header tells,
// as it streams (the record is then written when the body ends). The per-isolate sink state lives
// here, as plain data.
import { countedBody, outcomeOf, recordOf, sampled, type RequestTrace } from "./telemetry.ts";
import { newSinkState, sinkConfig, sinkStatus, writeRecord, type Background, type SinkConfig, type TelemetryEnv } from "./telemetry-sink.ts";

interface RecorderEnv extends TelemetryEnv {
  SERVICE_NAME: string;
  MESH_NAME: string;
}

const state = newSinkState();
// Read once per env (the same object for every request of an isolate), not per request.
let config: SinkConfig | undefined;
let configEnv: RecorderEnv | undefined;

/** Records `response` as the end of `trace` (if sampled) and returns what the client gets. */
export function recordRequest(trace: RequestTrace, response: Response, env: RecorderEnv, ctx: Background): Response {
  if (!sampled(trace.sampleInterval, Math.random)) {
    state.counters.sampledOut++;
    return response;
  }
  if (configEnv !== env) {
    configEnv = env;
    config = sinkConfig(env);
  }
  const sink = config!;
  const latencyMs = Date.now() - trace.startedMs;
  const where = { mesh: env.MESH_NAME, destination: env.SERVICE_NAME };
  const write = (bytes: number) => {
    const { outcome, reason } = outcomeOf(response, trace.attempts, trace.rpcCode);
    writeRecord(state, sink, env, ctx, recordOf(trace, where, response.status, outcome, reason || trace.reason, latencyMs, bytes));
  };
  // The sidecar watches the body (stream.ts) and the record waits for its end: an RPC stream's
  // status, or its size when the policy counts streamed bytes, is only known then.
  if (trace.finished !== undefined) {
    ctx.waitUntil(trace.finished.then(() => write(trace.responseBytes)));
    return response;
  }
  const length = response.headers.get("content-length");
  if (trace.responseBytes >= 0 || length !== null || response.body === null || !trace.countStreamedBytes) {
    const bytes = trace.responseBytes >= 0 ? trace.responseBytes : response.body === null ? 0 : length === null ? -1 : Number(length);
    write(Number.isFinite(bytes) ? bytes : -1);
    return response;
  }
  // A body the sidecar does not watch (streamIdleTimeoutMs 0) whose size no header tells (service
  // bindings never send content-length): count it on the way, when the policy asks for it (a JS
  // stream per response costs CPU; see bench:overhead).
  let bodyEnded: () => void = () => {};
  ctx.waitUntil(new Promise<void>((resolve) => (bodyEnded = resolve)));
  const body = countedBody(response.body, (bytes) => {
    write(bytes);
    bodyEnded();
  });
  return new Response(body, response);
}

export function telemetryStatus(): Record<string, unknown> {
  return sinkStatus(state, config);
}
