// The sidecar's routing filters as pure functions over URL, Headers and Response.
import { describe, expect, it } from "vitest";
import type { CompiledHeaderModifier, CompiledRouteFilters } from "../../policies/snapshot.ts";
import { answerWithoutForwarding, modifyHeaders, redirectLocation, rewritePath, shapeResponse, shapeUpstream } from "../../workers/sidecar/filters.ts";

const mod = (m: Partial<CompiledHeaderModifier>): CompiledHeaderModifier => ({ remove: [], set: [], add: [], ...m });

describe("rewritePath", () => {
  // The Gateway API's table for ReplacePrefixMatch, with the compiled prefix (trailing "/" dropped).
  const table: [path: string, prefix: string, replacement: string, expected: string][] = [
    ["/foo/bar", "/foo", "/xyz", "/xyz/bar"],
    ["/foo/bar", "/foo", "/xyz/", "/xyz/bar"],
    ["/foo", "/foo", "/xyz", "/xyz"],
    ["/foo/", "/foo", "/xyz", "/xyz/"],
    ["/foo/bar", "/foo", "", "/bar"],
    ["/foo/", "/foo", "", "/"],
    ["/foo", "/foo", "", "/"],
    ["/foo/", "/foo", "/", "/"],
    ["/foo", "/foo", "/", "/"],
    ["/anything/else", "", "/base", "/base/anything/else"],
  ];
  it.each(table)("%s with prefix %j replaced by %j is %s", (path, prefix, replacement, expected) => {
    expect(rewritePath({ kind: "prefix", prefix, replacement }, path)).toBe(expected);
  });

  it("replaces the whole path", () => {
    expect(rewritePath({ kind: "full", path: "/one" }, "/full/one/two")).toBe("/one");
  });

  it("leaves a path without the prefix alone", () => {
    expect(rewritePath({ kind: "prefix", prefix: "/foo", replacement: "/x" }, "/bar")).toBe("/bar");
  });
});

describe("redirectLocation", () => {
  const url = new URL("http://echo.test:8080/original-prefix/lemon?q=1");

  it("keeps the request's scheme, host, port, path and query by default", () => {
    expect(redirectLocation({ status: 302 }, url)).toBe("http://echo.test:8080/original-prefix/lemon?q=1");
  });

  it("replaces host, port and path, keeping the query", () => {
    expect(redirectLocation({ status: 301, hostname: "example.org", port: 8083, path: { kind: "prefix", prefix: "/original-prefix", replacement: "/replacement-prefix" } }, url))
      .toBe("http://example.org:8083/replacement-prefix/lemon?q=1");
    expect(redirectLocation({ status: 302, path: { kind: "full", path: "/full-path-replacement" } }, url)).toBe("http://echo.test:8080/full-path-replacement?q=1");
  });

  it("uses the well-known port of a new scheme, and leaves default ports out", () => {
    expect(redirectLocation({ status: 302, scheme: "https" }, url)).toBe("https://echo.test/original-prefix/lemon?q=1");
    expect(redirectLocation({ status: 302, scheme: "https", port: 443 }, url)).toBe("https://echo.test/original-prefix/lemon?q=1");
    expect(redirectLocation({ status: 302, port: 80 }, url)).toBe("http://echo.test/original-prefix/lemon?q=1");
    expect(redirectLocation({ status: 302, scheme: "http", port: 8443 }, new URL("https://a.test/x"))).toBe("http://a.test:8443/x");
  });
});

describe("answerWithoutForwarding", () => {
  it("answers a redirect with its status and Location, and the route's response headers", async () => {
    const filters: CompiledRouteFilters = { redirect: { status: 308, scheme: "https" }, responseHeaders: mod({ set: [{ name: "x-why", value: "tls" }] }) };
    const res = answerWithoutForwarding(filters, "POST", new URL("http://a.test/x"))!;
    expect(res.status).toBe(308);
    expect(res.headers.get("location")).toBe("https://a.test/x");
    expect(res.headers.get("x-why")).toBe("tls");
    expect(await res.text()).toBe("");
  });

  it("answers a direct response with its body and content type, without a body for HEAD", async () => {
    const filters: CompiledRouteFilters = { directResponse: { status: 503, body: '{"down":true}', contentType: "application/json" } };
    const res = answerWithoutForwarding(filters, "GET", new URL("http://a.test/"))!;
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.text()).toBe('{"down":true}');
    expect(await answerWithoutForwarding(filters, "HEAD", new URL("http://a.test/"))!.text()).toBe("");
  });

  it("does nothing for a forwarding route", () => {
    expect(answerWithoutForwarding(undefined, "GET", new URL("http://a.test/"))).toBeUndefined();
    expect(answerWithoutForwarding({ requestHeaders: mod({ remove: ["x"] }) }, "GET", new URL("http://a.test/"))).toBeUndefined();
  });
});

describe("modifyHeaders", () => {
  it("removes, then sets, then adds, case-insensitively", () => {
    const h = new Headers({ "X-Header-Set": "original", "X-Header-Add": "original", "X-Header-Remove": "gone", Other: "kept" });
    modifyHeaders(h, mod({ remove: ["x-header-remove"], set: [{ name: "x-header-set", value: "set" }], add: [{ name: "x-header-add", value: "added" }, { name: "x-new", value: "n" }] }));
    expect(Object.fromEntries(h)).toEqual({ "x-header-set": "set", "x-header-add": "original, added", "x-new": "n", other: "kept" });
  });
});

describe("shapeUpstream", () => {
  const url = new URL("http://echo.test/prefix/one/two?x=1");

  it("returns the very same objects when the route has no filters", () => {
    const headers = new Headers({ a: "1" });
    const out = shapeUpstream(undefined, "v1", url, headers);
    expect(out.url).toBe(url);
    expect(out.headers).toBe(headers);
  });

  it("applies route-level then destination-level modifiers, without touching the originals", () => {
    const headers = new Headers({ "x-a": "client" });
    const filters: CompiledRouteFilters = {
      requestHeaders: mod({ set: [{ name: "x-a", value: "route" }, { name: "x-route", value: "1" }] }),
      destinations: { v2: { requestHeaders: mod({ set: [{ name: "x-a", value: "backend" }] }) } },
    };
    expect(shapeUpstream(filters, "v1", url, headers).headers.get("x-a")).toBe("route");
    const toV2 = shapeUpstream(filters, "v2", url, headers);
    expect(toV2.headers.get("x-a")).toBe("backend");
    expect(toV2.headers.get("x-route")).toBe("1");
    expect(headers.get("x-a")).toBe("client");
  });

  it("rewrites the path and host of the URL, keeping the query, and a Host header if there is one", () => {
    const filters: CompiledRouteFilters = { rewrite: { path: { kind: "prefix", prefix: "/prefix/one", replacement: "/one" }, hostname: "one.internal.example" } };
    const out = shapeUpstream(filters, "v1", url, new Headers({ host: "echo.test" }));
    expect(out.url.href).toBe("http://one.internal.example/one/two?x=1");
    expect(out.headers.get("host")).toBe("one.internal.example");
    expect(url.href).toBe("http://echo.test/prefix/one/two?x=1");
  });
});

describe("shapeResponse", () => {
  it("applies the destination's then the route's modifiers to an immutable upstream response", async () => {
    const upstream = Response.json({ ok: true }, { headers: { server: "echo", "x-a": "upstream" } });
    const filters: CompiledRouteFilters = {
      responseHeaders: mod({ set: [{ name: "x-a", value: "route" }] }),
      destinations: { v1: { responseHeaders: mod({ remove: ["server"], set: [{ name: "x-a", value: "backend" }, { name: "x-backend", value: "v1" }] }) } },
    };
    const res = shapeResponse(upstream, filters, "v1");
    expect(res.headers.get("x-a")).toBe("route");
    expect(res.headers.get("x-backend")).toBe("v1");
    expect(res.headers.has("server")).toBe(false);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("returns the same response when nothing applies to the chosen destination", () => {
    const upstream = new Response("x");
    const filters: CompiledRouteFilters = { destinations: { v2: { responseHeaders: mod({ remove: ["a"] }) } } };
    expect(shapeResponse(upstream, filters, "v1")).toBe(upstream);
    expect(shapeResponse(upstream, undefined, "v1")).toBe(upstream);
  });
});
