// `npm start`: the whole mesh locally in one Miniflare instance, state persisted under
// .edgemesh/state, the example policy applied on first start, a little traffic flowing.
import path from "node:path";
import { DEFAULT_ADMIN_TOKEN, EXAMPLE_MESH, readPolicies, sidecarName, startMesh } from "./mesh.ts";
import { ROOT } from "./build.ts";

const port = Number(process.env.PORT ?? 8787);
const controlPort = Number(process.env.CONTROL_PORT ?? 8788);
const grpcPort = Number(process.env.GRPC_PORT ?? 8789);
const persistRoot = path.resolve(ROOT, process.env.EDGEMESH_STATE_DIR ?? ".edgemesh/state");
const adminToken = process.env.EDGEMESH_ADMIN_TOKEN ?? DEFAULT_ADMIN_TOKEN;
// Documents of the one mesh, merged: bookinfo and its companion, the gRPC greeter.
const policyFile = process.env.EDGEMESH_POLICY ?? "policies/bookinfo.json,policies/greeter.json";
const trafficEveryMs = Number(process.env.EDGEMESH_TRAFFIC_MS ?? 1000);

const started = performance.now();
process.env.WRANGLER_SEND_METRICS = "false";
const policy = await readPolicies(policyFile.split(","));
// The mesh's token keys are made afresh for each start (never printed); the policy says which
// rate limiting bindings the sidecars need.
const greeterSidecar = sidecarName("greeter");
const mesh = await startMesh({
  topology: EXAMPLE_MESH, port, controlPort, persistRoot, adminToken, policy, verbose: process.env.EDGEMESH_VERBOSE === "1",
  exposeWorkers: [greeterSidecar], exposedPorts: { [greeterSidecar]: grpcPort },
});
const greeterUrl = await mesh.directUrl(greeterSidecar);

const current = await mesh.admin("/v1/policy");
let policyLine: string;
if (current.status === 404) {
  const res = await mesh.applyPolicy(policy, 0);
  const body = (await res.json()) as { version?: number; errors?: unknown };
  if (!res.ok) {
    console.error(`the policy in ${policyFile} was refused:`, JSON.stringify(body, null, 2));
    await mesh.dispose();
    process.exit(1);
  }
  policyLine = `applied ${policyFile} as version ${body.version}`;
} else {
  const body = (await current.json()) as { version: number };
  policyLine = `found policy version ${body.version} in ${path.relative(process.cwd(), persistRoot)} (kept; apply a new one with the CLI)`;
}

let sent = 0;
let failed = 0;
const traffic = trafficEveryMs > 0
  ? setInterval(() => {
      const user = sent % 5 === 0 ? "?user=jason" : "";
      // Every third request is a Connect call to the greeter (its Greet canary) instead of a page.
      const call = sent % 3 === 0
        ? fetch(new URL("/edgemesh.example.v1.GreeterService/Greet", greeterUrl), { method: "POST", headers: { "content-type": "application/json", "connect-protocol-version": "1" }, body: '{"name":"npm start"}' })
        : fetch(new URL(`/api/v1/products/0${user}`, mesh.url));
      call
        .then(async (r) => {
          await r.arrayBuffer();
          sent++;
          if (!r.ok) failed++;
        })
        .catch(() => failed++);
    }, trafficEveryMs)
  : undefined;

console.log(`
edgemesh is running (ready in ${Math.round(performance.now() - started)} ms)

  app (productpage via its sidecar)  ${mesh.url.href}
  gRPC greeter (Connect, gRPC-Web)   ${greeterUrl.href}
  control plane (admin API)          ${mesh.controlUrl.href}
  dashboard                          ${new URL("/dashboard", mesh.controlUrl).href}  (sign in with the admin token)
  admin token                        ${adminToken}
  policy                             ${policyLine}
  state                              ${persistRoot}

Try (the CLI needs: export EDGEMESH_URL=${mesh.controlUrl.origin} EDGEMESH_ADMIN_TOKEN=${adminToken}):
  npx edgemesh status
  npx edgemesh stat edges
  curl -i -H 'x-edgemesh-debug: 1' -H "x-edgemesh-debug-token: $(npx edgemesh token debug)" ${new URL("/api/v1/products/0", mesh.url).href}
  curl -H 'content-type: application/json' -H 'connect-protocol-version: 1' -d '{"name":"you"}' ${new URL("/edgemesh.example.v1.GreeterService/Greet", greeterUrl).href}
  npx edgemesh tokens create dashboard --scope read     # a read-only admin token
  npx edgemesh audit                                    # who changed what
${trafficEveryMs > 0 ? `\nSending a request every ${trafficEveryMs} ms (EDGEMESH_TRAFFIC_MS=0 turns it off).` : ""}
Ctrl-C stops the mesh.`);

// Miniflare's own exit hook (registered when it started) stops workerd and exits the process;
// this one only reports.
function report(signal: string): void {
  if (traffic) clearInterval(traffic);
  console.log(`\n${signal}: stopping the mesh (background traffic: ${sent} requests, ${failed} failed)`);
}
process.prependListener("SIGINT", () => report("SIGINT"));
process.prependListener("SIGTERM", () => report("SIGTERM"));
