// Compiled with sidecar-env.d.ts by test/integration/deploy-types.test.ts, outside tsconfig's
// program (the generated file declares wrangler's global Cloudflare.Env). It compiles only while
// the generated sidecar config gives the sidecar every binding and variable it requires (see
// serves.ts).
import type { SidecarEnv } from "../workers/sidecar/index.ts";
import type { Serves } from "./serves.ts";

export const sidecar: Serves<SidecarWorkerEnv, SidecarEnv> = true;
