import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../policies/compile.ts";
import { grpcPathMatch } from "../../policies/grpc.ts";
import { validatePolicy } from "../../policies/schema.ts";
import { matchRoute, prepareRoutes } from "../../workers/sidecar/match.ts";

const SERVICE = "edgemesh.example.v1.GreeterService";

function doc(match: unknown[], retries?: unknown) {
  return {
    mesh: "m",
    services: {
      greeter: {
        endpoints: [{ id: "g1", binding: "G1", labels: { version: "v1" } }, { id: "g2", binding: "G2", labels: { version: "v2" } }],
        subsets: { v1: { version: "v1" }, v2: { version: "v2" } },
        routes: [
          { name: "grpc", match, to: [{ subset: "v2" }], ...(retries ? { retries } : {}) },
          { name: "rest", to: [{ subset: "v1" }] },
        ],
      },
    },
  };
}

function routeFor(match: unknown[], path: string, headers: Record<string, string> = {}): string | undefined {
  const checked = validatePolicy(doc(match));
  if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
  const routes = prepareRoutes(compilePolicy(checked.document).services.greeter!.routes);
  return matchRoute(routes, { method: "POST", path, headers: new Headers(headers), query: () => new URLSearchParams() })?.route.name;
}

describe("gRPC method matches", () => {
  it("compile into the path matcher: exact, service prefix, or an anchored regex", () => {
    expect(grpcPathMatch({ service: { exact: SERVICE }, method: { exact: "Greet" } })).toEqual({ exact: `/${SERVICE}/Greet` });
    expect(grpcPathMatch({ service: { exact: SERVICE } })).toEqual({ prefix: `/${SERVICE}/` });
    expect(grpcPathMatch({ method: { exact: "Greet" } })).toEqual({ regex: "/[^/]+/Greet" });
    expect(grpcPathMatch({ service: { exact: "a.B" }, method: { regex: "Greet.*" } })).toEqual({ regex: "/a\\.B/(?:Greet.*)" });
  });

  it("route calls by service and method, as GRPCRoute does", () => {
    const exact = [{ grpc: { service: { exact: SERVICE }, method: { exact: "Greet" } } }];
    expect(routeFor(exact, `/${SERVICE}/Greet`)).toBe("grpc");
    expect(routeFor(exact, `/${SERVICE}/GreetStream`)).toBe("rest");
    expect(routeFor(exact, `/other.Service/Greet`)).toBe("rest");

    const wholeService = [{ grpc: { service: { exact: SERVICE } } }];
    expect(routeFor(wholeService, `/${SERVICE}/GreetStream`)).toBe("grpc");
    expect(routeFor(wholeService, `/${SERVICE}x/Greet`)).toBe("rest");

    const anyService = [{ grpc: { method: { exact: "Greet" } } }];
    expect(routeFor(anyService, "/a.b.C/Greet")).toBe("grpc");
    expect(routeFor(anyService, "/a/b/Greet")).toBe("rest");
    expect(routeFor(anyService, "/a.b.C/GreetX")).toBe("rest");

    const regex = [{ grpc: { service: { regex: "edgemesh\\.example\\.v[0-9]+\\.\\w+" }, method: { regex: "Greet(Stream)?" } } }];
    expect(routeFor(regex, `/${SERVICE}/GreetStream`)).toBe("grpc");
    expect(routeFor(regex, `/${SERVICE}/GreetStreams`)).toBe("rest");
    // The dot of an exact service name is a dot, not "any character".
    expect(routeFor([{ grpc: { service: { exact: "a.B" }, method: { regex: ".+" } } }], "/axB/Do")).toBe("rest");
  });

  it("combine with header matches", () => {
    const match = [{ grpc: { service: { exact: SERVICE } }, headers: { "x-canary": { exact: "1" } } }];
    expect(routeFor(match, `/${SERVICE}/Greet`, { "x-canary": "1" })).toBe("grpc");
    expect(routeFor(match, `/${SERVICE}/Greet`)).toBe("rest");
  });

  it("refuse bad names, non-RE2 regexes, empty matches and grpc together with path, naming the field", () => {
    const errors = (match: unknown[]) => {
      const r = validatePolicy(doc(match));
      return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
    };
    expect(errors([{ grpc: { service: { exact: "edgemesh/example" } } }])).toEqual([
      expect.stringMatching(/^\$\.services\.greeter\.routes\[0\]\.match\[0\]\.grpc\.service\.exact: not a valid gRPC service name/),
    ]);
    expect(errors([{ grpc: { method: { exact: "Greet.Me" } } }])[0]).toMatch(/grpc\.method\.exact: not a valid gRPC method name, e\.g\. "Greet"/);
    expect(errors([{ grpc: { method: { regex: "(?=Greet)" } } }])[0]).toMatch(/grpc\.method\.regex: not a valid RE2 regular expression/);
    expect(errors([{ grpc: { method: { exact: "A", regex: "B" } } }])[0]).toMatch(/grpc\.method: give exactly one of "exact" or "regex" for the method/);
    expect(errors([{ grpc: {} }])[0]).toMatch(/\.grpc: give "service", "method" or both/);
    expect(errors([{ path: { prefix: "/" }, grpc: { method: { exact: "Greet" } } }])[0]).toMatch(/\.grpc: give either "path" or "grpc"/);
    expect(errors([{ grpc: { service: { exact: SERVICE }, host: "x" } }])[0]).toMatch(/\.grpc/);
  });
});

describe("retryOn gRPC codes", () => {
  it("compile into the codes a retry acts on", () => {
    const checked = validatePolicy(doc([], { retryOn: ["unavailable", "deadline-exceeded", "cancelled", "internal", "resource-exhausted", "reset"] }));
    if (!checked.ok) throw new Error(JSON.stringify(checked.errors));
    const retry = compilePolicy(checked.document).services.greeter!.routes[0]!.retry;
    expect(retry.grpcRetryCodes).toEqual([1, 4, 8, 13, 14]);
    expect(retry.onReset).toBe(true);
    expect(retry.onGatewayError).toBe(false);
    expect(compilePolicy(checked.document).services.greeter!.routes[1]!.retry.grpcRetryCodes).toEqual([]);
  });

  it("refuse a code that is not a retry condition", () => {
    const r = validatePolicy(doc([], { retryOn: ["unavailble"] }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]!.path).toBe("$.services.greeter.routes[0].retries.retryOn[0]");
  });
});
