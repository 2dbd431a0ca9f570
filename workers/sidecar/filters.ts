// Routing filters on the request path: redirects and direct responses answer right after route
// matching; header modifiers and URL rewrites shape what goes upstream (route level, then the
// chosen destination's); response header modifiers shape the answer (the destination's, then the
// route's). Pure functions over Web-standard URL, Headers and Response. A route without filters
// costs a property read per stage: no URL, Headers or Response is copied for it.
import type { CompiledDestinationFilters, CompiledHeaderModifier, CompiledPathRewrite, CompiledRedirect, CompiledRouteFilters } from "../../policies/snapshot.ts";

/** Applies remove, then set, then add, to a mutable Headers. */
export function modifyHeaders(headers: Headers, m: CompiledHeaderModifier): void {
  for (const name of m.remove) headers.delete(name);
  for (const h of m.set) headers.set(h.name, h.value);
  for (const h of m.add) headers.append(h.name, h.value);
}

/**
 * The path after a rewrite. A prefix replacement keeps the rest of the path on a "/" boundary:
 * prefix "/foo", replacement "/xyz": "/foo/bar" -> "/xyz/bar", "/foo" -> "/xyz"; replacement ""
 * or "/": "/foo/bar" -> "/bar", "/foo" -> "/".
 */
export function rewritePath(rule: CompiledPathRewrite, path: string): string {
  if (rule.kind === "full") return rule.path;
  // The route matched on this prefix; a path without it (never expected) is left alone.
  if (!path.startsWith(rule.prefix)) return path;
  const rest = path.slice(rule.prefix.length);
  const head = rule.replacement.endsWith("/") ? rule.replacement.slice(0, -1) : rule.replacement;
  const joined = head + rest;
  if (joined === "") return "/";
  return joined.startsWith("/") ? joined : `/${joined}`;
}

const DEFAULT_PORT: Record<string, string> = { http: "80", https: "443" };

/** The Location of a redirect for a request to `url`. */
export function redirectLocation(r: CompiledRedirect, url: URL): string {
  const scheme = r.scheme ?? url.protocol.slice(0, -1);
  const host = r.hostname ?? url.hostname;
  // A new scheme without a port means that scheme's well-known port, not the request's.
  let port = r.port !== undefined ? String(r.port) : r.scheme !== undefined ? "" : url.port;
  if (DEFAULT_PORT[scheme] === port) port = "";
  const path = r.path ? rewritePath(r.path, url.pathname) : url.pathname;
  return `${scheme}://${host}${port ? `:${port}` : ""}${path}${url.search}`;
}

/** A redirect or direct response when the route answers itself; undefined when it forwards. */
export function answerWithoutForwarding(filters: CompiledRouteFilters | undefined, method: string, url: URL): Response | undefined {
  if (filters === undefined) return undefined;
  let response: Response;
  if (filters.redirect) {
    response = new Response(null, { status: filters.redirect.status, headers: { location: redirectLocation(filters.redirect, url) } });
  } else if (filters.directResponse) {
    const d = filters.directResponse;
    const withBody = d.body !== undefined && method !== "HEAD";
    response = new Response(withBody ? d.body : null, { status: d.status, headers: d.contentType !== undefined ? { "content-type": d.contentType } : {} });
  } else return undefined;
  if (filters.responseHeaders) modifyHeaders(response.headers, filters.responseHeaders);
  return response;
}

export interface UpstreamRequest {
  url: URL;
  headers: Headers;
}

/**
 * The URL and headers to send upstream for a request routed to `subset`: the route's request
 * modifiers and rewrite, then the destination's request modifiers. The given objects come back
 * untouched when nothing applies; otherwise copies are made, never changes to the originals.
 */
export function shapeUpstream(filters: CompiledRouteFilters | undefined, subset: string, url: URL, headers: Headers): UpstreamRequest {
  if (filters === undefined) return { url, headers };
  const destination = filters.destinations?.[subset];
  const rewrite = filters.rewrite;
  let outUrl = url;
  if (rewrite) {
    outUrl = new URL(url.href);
    if (rewrite.path) outUrl.pathname = rewritePath(rewrite.path, url.pathname);
    if (rewrite.hostname !== undefined) outUrl.hostname = rewrite.hostname;
  }
  let outHeaders = headers;
  if (filters.requestHeaders || destination?.requestHeaders || rewrite?.hostname !== undefined) {
    outHeaders = new Headers(headers);
    if (rewrite?.hostname !== undefined && outHeaders.has("host")) outHeaders.set("host", outUrl.host);
    if (filters.requestHeaders) modifyHeaders(outHeaders, filters.requestHeaders);
    if (destination?.requestHeaders) modifyHeaders(outHeaders, destination.requestHeaders);
  }
  return { url: outUrl, headers: outHeaders };
}

/** The answer with the destination's, then the route's response modifiers applied. */
export function shapeResponse(response: Response, filters: CompiledRouteFilters | undefined, subset: string): Response {
  if (filters === undefined) return response;
  const destination: CompiledDestinationFilters | undefined = filters.destinations?.[subset];
  // A protocol switch (101, WebSocket) cannot be re-wrapped and keeps its headers.
  if ((!filters.responseHeaders && !destination?.responseHeaders) || response.status < 200) return response;
  // Upstream responses have immutable headers: copy once, then modify.
  const shaped = new Response(response.body, response);
  if (destination?.responseHeaders) modifyHeaders(shaped.headers, destination.responseHeaders);
  if (filters.responseHeaders) modifyHeaders(shaped.headers, filters.responseHeaders);
  return shaped;
}
