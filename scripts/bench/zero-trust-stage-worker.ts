// Runs the sidecar's zero-trust stage (zero-trust-stage.ts) `n` times in one request, inside
// workerd, for zero-trust-overhead.ts to price by the process's CPU time:
//   GET /?variant=plain|guarded|none&n=N   (x-edgemesh-token passed on to the stage for guarded)
import { prepareStageServices, zeroTrustStage } from "./zero-trust-stage.ts";

interface Env {
  EDGEMESH_TOKEN_KEYS: string;
}

const services = prepareStageServices();

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? 1);
    const variant = url.searchParams.get("variant");
    const inner = new Request("http://svc/bench", { headers: variant === "guarded" ? { "x-edgemesh-token": request.headers.get("x-edgemesh-token") ?? "" } : {} });
    for (let i = 0; i < n; i++) {
      if (variant === "plain") await zeroTrustStage(inner, "/bench", services.plain, env);
      else if (variant === "guarded") await zeroTrustStage(inner, "/bench", services.guarded, env);
      else await Promise.resolve();
    }
    return new Response("ok");
  },
} satisfies ExportedHandler<Env>;
