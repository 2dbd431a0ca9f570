// POST /v1/import on the real runtime: the importer (and its YAML parser) inside the control
// Worker, merged into the active policy, applied only when asked, and what it applies served by
// the sidecar (an Istio direct response, a header route and a redirect; a GRPCRoute's method
// route). SMI ServiceAccounts are mapped with ?serviceAccount=.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sidecarName, startMesh, type RunningMesh, type Topology } from "../../scripts/mesh.ts";

const TOPOLOGY: Topology = {
  mesh: "shop",
  services: {
    web: [
      { id: "web-v1", binding: "WEB_V1", script: "test-echo" },
      { id: "web-v2", binding: "WEB_V2", script: "test-echo" },
    ],
  },
};

const BASE = {
  mesh: "shop",
  services: {
    web: {
      snapshotTtlMs: 100,
      endpoints: [
        { id: "web-v1", binding: "WEB_V1", labels: { version: "v1" } },
        { id: "web-v2", binding: "WEB_V2", labels: { version: "v2" } },
      ],
    },
  },
};

const ISTIO = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web }
spec:
  host: web.shop.svc.cluster.local
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web }
spec:
  hosts: [web]
  http:
  - name: maintenance
    match: [{ uri: { prefix: /admin } }]
    directResponse: { status: 503, body: { string: "back soon" } }
    headers: { response: { set: { retry-after: "120" } } }
  - name: old-home
    match: [{ uri: { exact: /home.html } }]
    redirect: { uri: /, redirectCode: 308 }
  - name: testers
    match: [{ headers: { x-tester: { exact: "yes" } } }]
    route: [{ destination: { host: web, subset: v2 } }]
  - name: default
    route: [{ destination: { host: web, subset: v1 } }]
    corsPolicy: { allowOrigins: [{ exact: "https://shop.example" }] }
`;

// Backends as Kubernetes Services: their selectors become the subsets, whatever the active policy has.
const GRPC = `apiVersion: v1
kind: Service
metadata: { name: web-v1 }
spec: { selector: { version: v1 }, ports: [{ port: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: web-v2 }
spec: { selector: { version: v2 } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: cart }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 8080 }]
  rules:
  - matches: [{ method: { service: shop.v1.Cart, method: Checkout } }]
    backendRefs: [{ name: web-v2 }]
  - backendRefs: [{ name: web-v1 }]
`;

const SMI_TARGET = `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: { name: web-from-jobs, namespace: shop }
spec:
  destination: { kind: ServiceAccount, name: web-sa }
  rules: [{ kind: TCPRoute, name: all }]
  sources: [{ kind: ServiceAccount, name: report, namespace: batch }]
`;

let mesh: RunningMesh;
let web: { fetch(url: string, init?: RequestInit): Promise<Response> };

const importCall = (query: string, body: string, headers: Record<string, string> = {}) =>
  mesh.admin(`/v1/import${query}`, { method: "POST", headers: { "content-type": "application/yaml", ...headers }, body });

async function activeVersion(): Promise<number> {
  return ((await (await mesh.admin("/v1/policy")).json()) as { version: number }).version;
}

beforeAll(async () => {
  mesh = await startMesh({ topology: TOPOLOGY });
  expect((await mesh.applyPolicy(BASE)).status).toBe(201);
  web = (await mesh.mf.getWorker(sidecarName("web"))) as never;
});

afterAll(() => mesh?.dispose());

describe("POST /v1/import", () => {
  it("answers the merged document and the report without applying it", async () => {
    const before = await activeVersion();
    const res = await importCall("", ISTIO);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.errors).toEqual([]);
    expect(body.baseVersion).toBe(before);
    expect(body.imported).toEqual(["DestinationRule/web", "VirtualService/web"]);
    expect(body.document.services.web.endpoints).toEqual(BASE.services.web.endpoints);
    expect(body.document.services.web.routes.map((r: any) => r.name)).toEqual(["maintenance", "old-home", "testers", "default"]);
    expect(body.ignored).toEqual([{ resource: "VirtualService/web", source: "body#2", path: "$.spec.http[3].corsPolicy", reason: expect.stringMatching(/CORS/) }]);
    expect(await activeVersion()).toBe(before);
  });

  it("applies with ?apply=true, authored by the admin token that imported (never a header), and the sidecar serves it", async () => {
    const before = await activeVersion();
    const res = await importCall("?apply=true", ISTIO, { "x-edgemesh-author": "alice" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as any;
    expect(body.applied.version).toBe(before + 1);
    expect(res.headers.get("etag")).toBe(`"${before + 1}"`);
    const history = (await (await mesh.admin("/v1/policy/history?limit=1")).json()) as any;
    expect(history.versions[0]).toMatchObject({ version: before + 1, author: "bootstrap", message: "import: DestinationRule/web, VirtualService/web" });
    const audit = (await (await mesh.admin("/v1/audit?action=import.apply&limit=1")).json()) as any;
    expect(audit.records[0]).toMatchObject({ tokenName: "bootstrap", action: "import.apply", outcome: "ok", detail: { status: 201 } });

    // The sidecar picks the new version up in the background.
    let maintenance: Response | undefined;
    for (let i = 0; i < 100; i++) {
      maintenance = await web.fetch("http://web/admin/users");
      if (maintenance.status === 503) break;
      await maintenance.arrayBuffer();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(maintenance!.status).toBe(503);
    expect(maintenance!.headers.get("retry-after")).toBe("120");
    expect(await maintenance!.text()).toBe("back soon");
    const moved = await web.fetch("http://web/home.html?x=1", { redirect: "manual" });
    expect(moved.status).toBe(308);
    expect(moved.headers.get("location")).toBe("http://web/?x=1");
    const tester = await web.fetch("http://web/", { headers: { "x-tester": "yes" } });
    expect(((await tester.json()) as { endpoint: string }).endpoint).toBe("web-v2");
    const other = await web.fetch("http://web/");
    expect(((await other.json()) as { endpoint: string }).endpoint).toBe("web-v1");
  });

  it("refuses to apply over a version other than the one it merged into (If-Match)", async () => {
    const current = await activeVersion();
    const res = await importCall("?apply=true", ISTIO, { "if-match": `"${current - 1}"` });
    expect(res.status).toBe(409);
    const body = (await res.json()) as any;
    expect(body.currentVersion).toBe(current);
    expect(body.error).toMatch(/import again to merge into it/);
    expect(await activeVersion()).toBe(current);
  });

  it("answers 400 with the errors and applies nothing when the import has errors", async () => {
    const current = await activeVersion();
    const res = await importCall("?apply=true", ISTIO.replace("subset: v2", "subset: v7"));
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.error).toMatch(/nothing was applied/);
    expect(body.errors).toEqual([expect.objectContaining({ resource: "VirtualService/web", path: "$.spec.http[2].route[0].destination.subset", message: expect.stringMatching(/subset "v7"/) })]);
    expect(await activeVersion()).toBe(current);
  });

  it("starts from an empty policy with ?base=none", async () => {
    const res = await importCall("?base=none", ISTIO);
    const body = (await res.json()) as any;
    expect(body.baseVersion).toBe(0);
    expect(body.document.services.web.endpoints).toBeUndefined();
    expect(body.warnings).toEqual(expect.arrayContaining([{ message: expect.stringMatching(/service "web" has no endpoints/) }]));
  });

  it("imports a GRPCRoute, and the sidecar routes each RPC by its method", async () => {
    const res = await importCall("?apply=true", GRPC);
    expect(res.status).toBe(201);
    const body = (await res.json()) as any;
    expect(body.imported).toEqual(["GRPCRoute/cart", "Service/web-v1", "Service/web-v2"]);
    expect(body.document.services.web.routes).toEqual([
      { name: "cart-rule0", match: [{ grpc: { service: { exact: "shop.v1.Cart" }, method: { exact: "Checkout" } } }], to: [{ subset: "web-v2", weight: 1 }] },
      { name: "cart-rule1", to: [{ subset: "web-v1", weight: 1 }] },
    ]);
    expect(body.ignored.map((f: any) => `${f.resource} ${f.path}`)).toEqual(["Service/web-v1 $.spec.ports", "GRPCRoute/cart $.spec.parentRefs[0].port"]);

    // A Connect unary call (JSON) is a POST to /<service>/<method>; the debug header names the route taken.
    const call = async (method: string) => {
      const answer = await web.fetch(`http://web/shop.v1.Cart/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1", ...(await mesh.debugHeaders()) },
        body: "{}",
      });
      return { route: answer.headers.get("x-edgemesh-route"), endpoint: ((await answer.json()) as { endpoint: string }).endpoint };
    };
    // The sidecar picks the new version up in the background.
    let checkout = await call("Checkout");
    for (let i = 0; i < 100 && checkout.route !== "cart-rule0"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      checkout = await call("Checkout");
    }
    expect(checkout).toEqual({ route: "cart-rule0", endpoint: "web-v2" });
    expect(await call("List")).toEqual({ route: "cart-rule1", endpoint: "web-v1" });
  });

  it("maps SMI ServiceAccounts with ?serviceAccount= into access rules", async () => {
    const unmapped = (await (await importCall("", SMI_TARGET)).json()) as any;
    expect(unmapped.errors).toEqual([expect.objectContaining({ resource: "TrafficTarget/web-from-jobs", message: expect.stringMatching(/no service of the mesh is named "web-sa"/) })]);
    const res = await importCall(`?serviceAccount=${encodeURIComponent("shop/web-sa=web")}&serviceAccount=batch/report=nightly-report`, SMI_TARGET);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.errors).toEqual([]);
    expect(body.document.services.web.access).toEqual({ mode: "strict", allow: [{ name: "web-from-jobs-all", from: ["nightly-report"] }] });
    expect(body.document.access.identities).toEqual(["nightly-report"]);
    expect(((await (await importCall("?serviceAccount=report", SMI_TARGET)).json()) as any).error).toMatch(/\?serviceAccount must be \[namespace\/\]serviceaccount=name/);
  });

  it("says what is wrong with the request itself", async () => {
    expect((await importCall("?apply=yes", ISTIO)).status).toBe(400);
    expect(((await (await importCall("?base=latest", ISTIO)).json()) as any).error).toMatch(/\?base must be "active"/);
    expect(((await (await importCall("", "  \n")).json()) as any).error).toMatch(/send the manifests/);
    expect((await importCall("", "x".repeat(1024 * 1024 + 1))).status).toBe(413);
    const anonymous = await fetch(new URL("/v1/import", mesh.controlUrl), { method: "POST", body: ISTIO });
    expect(anonymous.status).toBe(401);
  });
});
