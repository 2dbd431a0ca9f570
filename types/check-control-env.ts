// Compiled with control-env.d.ts by test/integration/deploy-types.test.ts, outside tsconfig's
// program (the generated file declares wrangler's global Cloudflare.Env). Each line compiles only
// while the generated control Worker config gives that part of the code every binding and
// variable it requires (see serves.ts).
import type { ControlEnv } from "../workers/control/common.ts";
import type { MeshControlEnv } from "../durable/mesh-control.ts";
import type { MeshRelayEnv } from "../durable/relay.ts";
import type { TelemetryStoreEnv } from "../durable/telemetry-store.ts";
import type { ProbeEnv } from "../durable/health-probe.ts";
import type { Serves } from "./serves.ts";

export const adminApi: Serves<ControlWorkerEnv, ControlEnv> = true;
export const meshControl: Serves<ControlWorkerEnv, MeshControlEnv> = true;
export const meshRelay: Serves<ControlWorkerEnv, MeshRelayEnv> = true;
export const telemetryStore: Serves<ControlWorkerEnv, TelemetryStoreEnv> = true;
export const healthProbe: Serves<ControlWorkerEnv, ProbeEnv> = true;
