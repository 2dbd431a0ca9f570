import { afterEach, describe, expect, it, vi } from "vitest";
import type { ServiceSnapshot } from "../../policies/snapshot.ts";
import { allLoads } from "../../workers/sidecar/balance.ts";
import type { BodyPlan } from "../../workers/sidecar/body.ts";
import { newRetryBudget } from "../../workers/sidecar/budget.ts";
import { newOutlierState } from "../../workers/sidecar/outlier.ts";
import { proxy, type ProxyRequest, type ResilienceState } from "../../workers/sidecar/proxy.ts";
import { compiledService } from "./resilience-fixtures.ts";

let n = 0;
function setup(route: Record<string, unknown>, upstream: (request: Request) => Promise<Response>) {
  n++;
  const ids = ["a", "b", "c"].map((x) => `p${n}-${x}`);
  const base = compiledService({ subsets: { all: {} }, routes: [{ name: "r", to: [{ subset: "all" }], ...route }] });
  const snapshot: ServiceSnapshot = { ...base, endpoints: base.endpoints.map((e, i) => ({ ...e, id: ids[i]! })), policyVersion: 1, generation: 1, epoch: "e" };
  const env = { A: { fetch: upstream }, B: { fetch: upstream }, C: { fetch: upstream } };
  const state: ResilienceState = { outliers: newOutlierState(), budget: newRetryBudget() };
  const request = (method: string, body: BodyPlan): ProxyRequest => ({
    snapshot, route: snapshot.routes[0]!, members: snapshot.subsets["all"]!, method, url: new URL("http://api/x"), headers: new Headers(), body, env,
    colo: "", hashKey: undefined, faultTargeted: true, startedMs: Date.now(),
  });
  const outstanding = () => ids.reduce((sum, id) => sum + (allLoads().get(id)?.outstanding ?? 0), 0);
  return { state, request, outstanding };
}

const ok = () => Promise.resolve(new Response("ok"));
const bytes = new TextEncoder().encode("a body");

afterEach(() => {
  vi.useRealTimers();
});

describe("a try that cannot be sent", () => {
  it("a GET with a body goes upstream without it, and no try stays in flight", async () => {
    const seen: (string | null)[] = [];
    const { state, request, outstanding } = setup({}, async (r) => (seen.push(r.body === null ? null : await r.text()), new Response("ok")));
    const result = await proxy(request("GET", { kind: "buffered", bytes }), state);
    expect(result.response.status).toBe(200);
    expect(seen).toEqual([null]);
    expect(outstanding()).toBe(0);
  });

  it("a GET with a body on a hedged route answers instead of hanging", async () => {
    const slow = () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response("ok")), 20));
    const { state, request, outstanding } = setup({ hedge: { afterMs: 5 } }, slow);
    const result = await proxy(request("GET", { kind: "buffered", bytes }), state);
    expect(result.response.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(outstanding()).toBe(0);
  }, 2000);

  it("an upstream that throws is a connect failure naming the error, not a rejected proxy", async () => {
    const { state, request, outstanding } = setup({ retries: { attempts: 0 } }, () => {
      throw new TypeError("cannot send this");
    });
    const result = await proxy(request("POST", { kind: "buffered", bytes }), state);
    expect(result.response.status).toBe(502);
    expect(await result.response.json()).toMatchObject({ error: "connect-failure", detail: "cannot send this" });
    expect(outstanding()).toBe(0);
  });
});

describe("an injected delay", () => {
  it("leaves no timer behind when the try's timeout ends it first", async () => {
    vi.useFakeTimers();
    const { state, request } = setup({ timeoutMs: 100, retries: { attempts: 0 }, fault: { delay: { percent: 100, ms: 60_000 } } }, ok);
    const running = proxy(request("GET", { kind: "none" }), state);
    await vi.advanceTimersByTimeAsync(150);
    expect((await running).response.status).toBe(504);
    expect(vi.getTimerCount()).toBe(0);
  });
});
