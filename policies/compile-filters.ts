// Compiles the routing filters (policies/filters.ts) into the snapshot's plain data: header names
// lower-cased and de-duplicated, the prefix a replacePrefixMatch replaces resolved from the route's
// matches, defaults filled in. A route without filters compiles to nothing, so the sidecar's
// per-request check is one property read.
import { DEFAULT_DIRECT_RESPONSE_CONTENT_TYPE, matchedPathPrefix, type HeaderModifier, type PathModifier } from "./filters.ts";
import type { RoutePolicy } from "./schema.ts";
import type { CompiledDestinationFilters, CompiledHeaderModifier, CompiledPathRewrite, CompiledRoute, CompiledRouteFilters } from "./snapshot.ts";
import type { z } from "zod";

type HeaderModifierPolicy = z.output<typeof HeaderModifier>;
type PathModifierPolicy = z.output<typeof PathModifier>;

export function compileHeaderModifier(m: HeaderModifierPolicy | undefined): CompiledHeaderModifier | undefined {
  if (!m) return undefined;
  const out: CompiledHeaderModifier = {
    remove: [...new Set((m.remove ?? []).map((n) => n.toLowerCase()))],
    set: (m.set ?? []).map((h) => ({ name: h.name.toLowerCase(), value: h.value })),
    add: (m.add ?? []).map((h) => ({ name: h.name.toLowerCase(), value: h.value })),
  };
  return out.remove.length + out.set.length + out.add.length > 0 ? out : undefined;
}

function compilePath(p: PathModifierPolicy | undefined, route: RoutePolicy): CompiledPathRewrite | undefined {
  if (!p) return undefined;
  if (p.replaceFullPath !== undefined) return { kind: "full", path: p.replaceFullPath };
  const found = matchedPathPrefix(route.match);
  // Validation refused a replacePrefixMatch without a common prefix; this only keeps tsc honest.
  if ("problem" in found) throw new Error(`route "${route.name}": ${found.problem}`);
  return { kind: "prefix", prefix: found.prefix, replacement: p.replacePrefixMatch! };
}

function compileRouteFilters(r: RoutePolicy): CompiledRouteFilters | undefined {
  const out: CompiledRouteFilters = {};
  const requestHeaders = compileHeaderModifier(r.requestHeaders);
  if (requestHeaders) out.requestHeaders = requestHeaders;
  const responseHeaders = compileHeaderModifier(r.responseHeaders);
  if (responseHeaders) out.responseHeaders = responseHeaders;
  if (r.rewrite) {
    const path = compilePath(r.rewrite.path, r);
    out.rewrite = { ...(path ? { path } : {}), ...(r.rewrite.hostname !== undefined ? { hostname: r.rewrite.hostname } : {}) };
  }
  if (r.redirect) {
    const { scheme, hostname, port, statusCode } = r.redirect;
    const path = compilePath(r.redirect.path, r);
    out.redirect = { status: statusCode, ...(scheme ? { scheme } : {}), ...(hostname !== undefined ? { hostname } : {}), ...(port !== undefined ? { port } : {}), ...(path ? { path } : {}) };
  }
  if (r.directResponse) {
    const { status, body, contentType } = r.directResponse;
    out.directResponse = body === undefined ? { status } : { status, body, contentType: contentType ?? DEFAULT_DIRECT_RESPONSE_CONTENT_TYPE };
  }
  const destinations: Record<string, CompiledDestinationFilters> = {};
  for (const d of r.to) {
    if (d.weight === 0) continue;
    const request = compileHeaderModifier(d.requestHeaders);
    const response = compileHeaderModifier(d.responseHeaders);
    if (request || response) destinations[d.subset] = { ...(request ? { requestHeaders: request } : {}), ...(response ? { responseHeaders: response } : {}) };
  }
  if (Object.keys(destinations).length > 0) out.destinations = destinations;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The `filters` field of a compiled route, or nothing when the route has none. */
export function compileFilters(r: RoutePolicy): Pick<CompiledRoute, "filters"> {
  const filters = compileRouteFilters(r);
  return filters ? { filters } : {};
}
