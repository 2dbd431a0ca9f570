// The Gateway API mesh conformance cases (conformance/tests/mesh of kubernetes-sigs/gateway-api),
// as data: each case names its HTTPRoute manifest (manifests/, rewritten for this suite) and the
// table of requests with what must happen to each. Requests go to a service's sidecar as
// http://<service><path>; `backend` is the echo deployment that answered (echo-v1 or echo-v2).
// Header values the sidecar joins ("a, b") are compared without the space after the comma.

export interface Expectation {
  /** The service whose sidecar gets the request; default "echo". */
  service?: string;
  /** Path and query. */
  path: string;
  method?: string;
  headers?: Record<string, string>;
  /** Default 200 (302 when `location` is given). */
  status?: number;
  backend?: string;
  /** What the backend received. */
  upstream?: { path?: string; host?: string; headers?: Record<string, string>; absent?: string[] };
  response?: { headers?: Record<string, string>; absent?: string[] };
  /** The whole Location of a redirect. */
  location?: string;
  /** The edgemesh route that matched (x-edgemesh-route). */
  route?: string;
}

export interface ConformanceCase {
  /** The upstream test's ShortName. */
  name: string;
  manifest: string;
  expectations: Expectation[];
  /**
   * Weighted split: `requests` requests to `path`, each backend's share within ±`tolerance` of its
   * weight. For 70/30 and 500 requests ±5 points is 2.4 standard deviations, so one batch in ~70
   * misses by chance; like the upstream suite (which allows 10), a fresh batch is sent up to
   * `batches` times. A wrong split misses every time.
   */
  weights?: { path: string; requests: number; tolerance: number; batches: number; expected: Record<string, number> };
}

const headerCase = (path: string, sent: Record<string, string>, upstream: Expectation["upstream"]): Expectation => ({ path, headers: sent, backend: "echo-v1", upstream: { path, ...upstream } });

const headerModifierTable: Expectation[] = [
  headerCase("/set", { "Some-Other-Header": "val" }, { headers: { "Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values" } }),
  headerCase("/set", { "Some-Other-Header": "val", "X-Header-Set": "some-other-value" }, { headers: { "Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values" } }),
  headerCase("/add", { "Some-Other-Header": "val" }, { headers: { "Some-Other-Header": "val", "X-Header-Add": "add-appends-values" } }),
  headerCase("/add", { "Some-Other-Header": "val", "X-Header-Add": "some-other-value" }, { headers: { "Some-Other-Header": "val", "X-Header-Add": "some-other-value,add-appends-values" } }),
  headerCase("/remove", { "X-Header-Remove": "val" }, { absent: ["X-Header-Remove"] }),
  headerCase(
    "/multiple",
    { "X-Header-Set-2": "set-val-2", "X-Header-Add-2": "add-val-2", "X-Header-Remove-2": "remove-val-2", "Another-Header": "another-header-val" },
    {
      headers: { "X-Header-Set-1": "header-set-1", "X-Header-Set-2": "header-set-2", "X-Header-Add-1": "header-add-1", "X-Header-Add-2": "add-val-2,header-add-2", "X-Header-Add-3": "header-add-3", "Another-Header": "another-header-val" },
      absent: ["X-Header-Remove-1", "X-Header-Remove-2"],
    },
  ),
  headerCase(
    "/case-insensitivity",
    { "x-header-set": "original-val-set", "x-header-add": "original-val-add", "x-header-remove": "original-val-remove", "Another-Header": "another-header-val" },
    { headers: { "X-Header-Set": "header-set", "X-Header-Add": "original-val-add,header-add", "Another-Header": "another-header-val" }, absent: ["x-header-remove", "X-Header-Remove"] },
  ),
];

export const CASES: ConformanceCase[] = [
  {
    name: "MeshBasic",
    manifest: "basic.yaml",
    expectations: [{ path: "/" }, { path: "/any/path?x=1", method: "POST" }],
  },
  {
    name: "MeshHTTPRouteSimpleSameNamespace",
    manifest: "simple.yaml",
    expectations: [{ path: "/", backend: "echo-v1" }],
  },
  {
    name: "MeshTrafficSplit",
    manifest: "split.yaml",
    expectations: [
      { path: "/v1", backend: "echo-v1" },
      { path: "/v2", backend: "echo-v2" },
      // Exact paths: anything else has no route.
      { path: "/v1/x", status: 404 },
    ],
  },
  {
    name: "MeshHTTPRouteMatching",
    manifest: "matching.yaml",
    expectations: [
      { path: "/", backend: "echo-v1" },
      { path: "/example", backend: "echo-v1" },
      { path: "/", headers: { Version: "one" }, backend: "echo-v1" },
      { path: "/v2", backend: "echo-v2" },
      { path: "/v2/example", backend: "echo-v2" },
      { path: "/", headers: { Version: "two" }, backend: "echo-v2" },
      { path: "/v2/", backend: "echo-v2" },
      // Not a path-element prefix of /v2.
      { path: "/v2example", backend: "echo-v1" },
      { path: "/foo/v2/example", backend: "echo-v1" },
    ],
  },
  {
    name: "MeshHTTPRouteQueryParamMatching",
    manifest: "query-params.yaml",
    expectations: [
      { path: "/?animal=whale", backend: "echo-v1" },
      { path: "/?animal=dolphin", backend: "echo-v2" },
      { path: "/?animal=whale&otherparam=irrelevant", backend: "echo-v1" },
      { path: "/?animal=dolphin&color=yellow", backend: "echo-v2" },
      { path: "/?color=blue", status: 404 },
      { path: "/?animal=dog", status: 404 },
      { path: "/?animal=whaledolphin", status: 404 },
      { path: "/", status: 404 },
      // Combined with path and header matches.
      { path: "/path1?animal=whale", backend: "echo-v1" },
      { path: "/?animal=whale", headers: { version: "one" }, backend: "echo-v2" },
      // (a AND b) OR (c AND d AND e): either side alone suffices.
      { path: "/path3?animal=shark", backend: "echo-v1" },
      { path: "/path4?animal=kraken", headers: { version: "three" }, backend: "echo-v1" },
      // ... but part of one side does not.
      { path: "/?animal=shark", status: 404 },
      { path: "/path4?animal=kraken", status: 404 },
      // A path match outranks a query match.
      { path: "/path5?animal=hydra", backend: "echo-v1" },
    ],
  },
  {
    name: "MeshHTTPRouteWeight",
    manifest: "weight.yaml",
    expectations: [{ path: "/", backend: undefined }],
    weights: { path: "/", requests: 500, tolerance: 0.05, batches: 3, expected: { "echo-v1": 0.7, "echo-v2": 0.3 } },
  },
  {
    name: "MeshHTTPRouteNamedRule",
    manifest: "named-rule.yaml",
    expectations: [
      { path: "/named", backend: "echo-v1", upstream: { path: "/named" }, route: "echo-named-named-rule" },
      { path: "/unnamed", backend: "echo-v2", upstream: { path: "/unnamed" }, route: "echo-named-rule1" },
    ],
  },
  { name: "MeshHTTPRouteRequestHeaderModifier", manifest: "request-headers.yaml", expectations: headerModifierTable },
  { name: "MeshHTTPRouteBackendRequestHeaderModifier", manifest: "backend-request-headers.yaml", expectations: headerModifierTable },
  {
    name: "MeshHTTPRouteRewritePath",
    manifest: "rewrite-path.yaml",
    expectations: [
      { path: "/prefix/one/two", backend: "echo-v1", upstream: { path: "/one/two" } },
      { path: "/strip-prefix/three", backend: "echo-v1", upstream: { path: "/three" } },
      { path: "/strip-prefix", backend: "echo-v1", upstream: { path: "/" } },
      { path: "/full/one/two", backend: "echo-v1", upstream: { path: "/one" } },
      {
        path: "/full/rewrite-path-and-modify-headers/test",
        headers: { "X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1", "X-Header-Set": "set-val" },
        backend: "echo-v1",
        upstream: { path: "/test", headers: { "X-Header-Add": "header-val-1", "X-Header-Add-Append": "append-val-1,header-val-2", "X-Header-Set": "set-overwrites-values" }, absent: ["X-Header-Remove"] },
      },
      {
        path: "/prefix/rewrite-path-and-modify-headers/one",
        headers: { "X-Header-Remove": "remove-val", "X-Header-Add-Append": "append-val-1", "X-Header-Set": "set-val" },
        backend: "echo-v1",
        upstream: { path: "/prefix/one", headers: { "X-Header-Add": "header-val-1", "X-Header-Add-Append": "append-val-1,header-val-2", "X-Header-Set": "set-overwrites-values" }, absent: ["X-Header-Remove"] },
      },
      // The query string survives a rewrite; the host rewrite reaches the backend.
      { path: "/prefix/one/two?q=1", backend: "echo-v1", upstream: { path: "/one/two" } },
      { path: "/host/x", backend: "echo-v1", upstream: { path: "/host/x", host: "one.example.org" } },
    ],
  },
  {
    name: "MeshHTTPRouteSchemeRedirect",
    manifest: "redirects.yaml",
    expectations: [
      { path: "/scheme", location: "https://echo/scheme" },
      { path: "/scheme-and-host", location: "https://example.org/scheme-and-host" },
      { path: "/scheme-and-status", status: 301, location: "https://echo/scheme-and-status" },
      { path: "/scheme-and-host-and-status", status: 302, location: "https://example.org/scheme-and-host-and-status" },
    ],
  },
  {
    name: "MeshHTTPRouteRedirectHostAndStatus",
    manifest: "redirects.yaml",
    expectations: [
      { path: "/hostname-redirect", location: "http://example.org/hostname-redirect" },
      { path: "/host-and-status", status: 301, location: "http://example.org/host-and-status" },
    ],
  },
  {
    name: "MeshHTTPRouteRedirectPort",
    manifest: "redirects.yaml",
    expectations: [
      { path: "/port", location: "http://echo:8083/port" },
      { path: "/port-and-host", location: "http://example.org:8083/port-and-host" },
      { path: "/port-and-status", status: 301, location: "http://echo:8083/port-and-status" },
    ],
  },
  {
    name: "MeshHTTPRouteRedirectPath",
    manifest: "redirects.yaml",
    expectations: [
      { path: "/original-prefix/lemon", location: "http://echo/replacement-prefix/lemon" },
      { path: "/full/path/original", location: "http://echo/full-path-replacement" },
      { path: "/path-and-host", location: "http://example.org/replacement-prefix" },
      { path: "/path-and-status", status: 301, location: "http://echo/replacement-prefix" },
      { path: "/original-prefix/lemon?keep=1", location: "http://echo/replacement-prefix/lemon?keep=1" },
    ],
  },
  {
    name: "MeshHTTPRoute303Redirect, 307 and 308",
    manifest: "redirects.yaml",
    expectations: [
      { path: "/see-other", status: 303, location: "http://echo/see-other" },
      { path: "/temporary", method: "POST", status: 307, location: "http://echo/temporary" },
      { path: "/permanent", status: 308, location: "http://echo/permanent" },
    ],
  },
  {
    name: "MeshFrontend",
    manifest: "frontend.yaml",
    expectations: [
      { service: "echo-v2", path: "/", backend: "echo-v2", response: { headers: { "X-Header-Set": "set" } } },
      // The same backend through another service: that service's routes apply, not echo-v2's.
      { service: "echo", path: "/", response: { absent: ["X-Header-Set"] } },
    ],
  },
  {
    name: "MeshHTTPRouteResponseHeaderModifier",
    manifest: "response-headers.yaml",
    expectations: [
      { path: "/rule", backend: "echo-v1", response: { headers: { "X-Header-Set": "rule", "X-Header-Add": "rule-added" }, absent: ["X-Echo-Backend"] } },
      { path: "/backend", backend: "echo-v2", response: { headers: { "X-Header-Set": "rule", "X-Backend-Only": "v2", "X-Echo-Backend": "echo-v2" } } },
    ],
  },
];
