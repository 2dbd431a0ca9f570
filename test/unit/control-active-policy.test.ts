// The policy in force, compiled per service: what a change recompiles, and what it leaves alone.
import { describe, expect, it } from "vitest";
import { ActivePolicy } from "../../durable/active-policy.ts";
import type { RegisteredInstance } from "../../durable/registry-merge.ts";
import { validatePolicy, type PolicyDocument } from "../../policies/schema.ts";

function doc(over: Record<string, unknown> = {}): PolicyDocument {
  const checked = validatePolicy({
    mesh: "m",
    services: {
      web: { endpoints: [{ id: "w-1", binding: "W_1" }], routes: [{ name: "all", to: [{ subset: "all" }], mirror: { service: "shadow", percent: 10 } }], subsets: { all: {} } },
      api: { endpoints: [{ id: "a-1", binding: "A_1" }] },
      shadow: { endpoints: [{ id: "s-1", binding: "S_1" }] },
      ...over,
    },
  });
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  return checked.document;
}

function model(registered: RegisteredInstance[] = []) {
  return new ActivePolicy((s) => registered.filter((r) => r.service === s), () => [...new Set(registered.map((r) => r.service))]);
}

const instance = (service: string, id: string): RegisteredInstance => ({ service, id, url: `https://${id}.example`, labels: {}, weight: 1, leaseTtlMs: 1_000, registeredAtMs: 0, lastHeartbeatMs: 0, expiresAtMs: 1_000 });

describe("ActivePolicy", () => {
  it("compiles each service on demand, with its mirror's endpoints resolved", () => {
    const p = model();
    expect(p.activate(1, doc())).toEqual(["web", "api", "shadow"]);
    expect(p.compiled("web")!.routes[0]!.mirror!.endpoints.map((e) => e.id)).toEqual(["s-1"]);
    expect(p.compiled("nope")).toBeUndefined();
  });

  it("recompiles only the changed services and the ones mirroring to them", () => {
    const p = model();
    p.activate(1, doc());
    const web = p.compiled("web");
    const api = p.compiled("api");
    const next = doc({ shadow: { endpoints: [{ id: "s-2", binding: "S_2" }] } });
    expect(p.activate(2, next, ["shadow"]).sort()).toEqual(["shadow", "web"]);
    // api was not touched: the very same compiled object.
    expect(p.compiled("api")).toBe(api);
    expect(p.compiled("web")).not.toBe(web);
    expect(p.compiled("web")!.routes[0]!.mirror!.endpoints.map((e) => e.id)).toEqual(["s-2"]);
  });

  it("drops a removed service and its registrations become conflicts", () => {
    const registered = [instance("api", "a-9")];
    const p = model(registered);
    p.activate(1, doc());
    expect(p.compiled("api")!.endpoints.map((e) => e.id)).toEqual(["a-1", "a-9"]);
    const without = doc();
    delete (without.services as Record<string, unknown>).api;
    expect(p.activate(2, without, ["api"])).toEqual([]);
    expect(p.compiled("api")).toBeUndefined();
    expect(p.conflicts()).toEqual([expect.objectContaining({ kind: "service-not-in-policy", service: "api", endpointId: "a-9" })]);
  });

  it("recompiles a service whose registry changed, and the services mirroring to it", () => {
    const registered: RegisteredInstance[] = [];
    const p = model(registered);
    p.activate(1, doc());
    const api = p.compiled("api");
    registered.push(instance("shadow", "s-9"));
    expect(p.registryChanged("shadow").sort()).toEqual(["shadow", "web"]);
    expect(p.compiled("web")!.routes[0]!.mirror!.endpoints.map((e) => e.id)).toEqual(["s-1", "s-9"]);
    expect(p.compiled("api")).toBe(api);
  });
});
