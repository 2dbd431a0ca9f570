// The Gateway API routing vocabulary of the policy schema: request and response header modifiers
// (per route and per destination), URL rewrites, redirects and direct responses. Every knob has its
// limits here and nowhere else; schema.ts plugs these into Route and Destination and calls
// `checkRouteFilters` for the rules that span several fields of a route, compile-filters.ts turns
// them into the snapshot's plain data.
import { z } from "zod";

export const MAX_HEADER_MODIFICATIONS = 16;
export const MAX_HEADER_NAME_CHARS = 256;
export const MAX_HEADER_VALUE_CHARS = 4096;
export const MAX_PATH_CHARS = 1024;
export const MAX_DIRECT_RESPONSE_BODY_BYTES = 64 * 1024;
export const DEFAULT_DIRECT_RESPONSE_CONTENT_TYPE = "text/plain; charset=utf-8";
export const REDIRECT_STATUS_CODES = [301, 302, 303, 307, 308] as const;
export const DEFAULT_REDIRECT_STATUS = 302;

// The runtime owns these: workerd derives Host from the URL and frames the body itself, and
// hop-by-hop headers do not survive a hop. A policy that sets them would silently do nothing.
const RUNTIME_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-connection"]);
const MESH_HEADER_PREFIX = "x-edgemesh-";

export const ModifiedHeaderName = z
  .string()
  .min(1)
  .max(MAX_HEADER_NAME_CHARS)
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, "not a valid header name (letters, digits and !#$%&'*+.^_`|~-)")
  .superRefine((name, ctx) => {
    const lower = name.toLowerCase();
    if (lower.startsWith(MESH_HEADER_PREFIX)) {
      ctx.addIssue({ code: "custom", message: `"${name}": x-edgemesh-* headers belong to the mesh (the sidecar strips and sets them); a policy cannot set, add or remove them` });
    } else if (lower === "host") {
      ctx.addIssue({ code: "custom", message: '"host" cannot be modified as a header: use the route\'s "rewrite": { "hostname": … }' });
    } else if (RUNTIME_HEADERS.has(lower)) {
      ctx.addIssue({ code: "custom", message: `"${name}" is managed by the runtime (framing or hop-by-hop) and cannot be modified by policy` });
    }
  })
  .describe("Header name, case-insensitive. x-edgemesh-*, host, content-length, transfer-encoding and hop-by-hop headers are refused.");

export const HeaderValue = z
  .string()
  .max(MAX_HEADER_VALUE_CHARS)
  .regex(/^[\t\x20-\x7e\x80-\xff]*$/, "header values are printable text: no CR, LF, NUL or other control characters, no characters above U+00FF")
  .describe(`Header value, at most ${MAX_HEADER_VALUE_CHARS} characters.`);

const HeaderAssignment = z.object({ name: ModifiedHeaderName, value: HeaderValue }).strict();

export const HeaderModifier = z
  .object({
    set: z.array(HeaderAssignment).max(MAX_HEADER_MODIFICATIONS).optional()
      .describe(`Headers to set, replacing any value they had. At most ${MAX_HEADER_MODIFICATIONS}.`),
    add: z.array(HeaderAssignment).max(MAX_HEADER_MODIFICATIONS).optional()
      .describe(`Headers to add; a header that already has a value keeps it and gets this one as well (comma-joined when read). At most ${MAX_HEADER_MODIFICATIONS}.`),
    remove: z.array(ModifiedHeaderName).max(MAX_HEADER_MODIFICATIONS).optional()
      .describe(`Headers to remove. At most ${MAX_HEADER_MODIFICATIONS}.`),
  })
  .strict()
  .superRefine((m, ctx) => {
    for (const list of ["set", "add"] as const) {
      const seen = new Map<string, number>();
      m[list]?.forEach((h, i) => {
        const lower = h.name.toLowerCase();
        const first = seen.get(lower);
        if (first !== undefined) {
          ctx.addIssue({ code: "custom", path: [list, i, "name"], message: `header "${h.name}" is already in ${list}[${first}]; give several values as one comma-separated value` });
        } else seen.set(lower, i);
      });
    }
    const written = new Set([...(m.set ?? []), ...(m.add ?? [])].map((h) => h.name.toLowerCase()));
    m.remove?.forEach((name, i) => {
      if (written.has(name.toLowerCase())) {
        ctx.addIssue({ code: "custom", path: ["remove", i], message: `header "${name}" is both removed and set or added; keep one of them` });
      }
    });
  })
  .describe("Header modifications, applied in this order: remove, set, add.");

const FullPath = z
  .string()
  .max(MAX_PATH_CHARS)
  .regex(/^\/[^?#\s]*$/, 'a path starts with "/" and has no query ("?"), fragment ("#") or whitespace, e.g. "/v2/items"');

const PrefixReplacement = z
  .string()
  .max(MAX_PATH_CHARS)
  .regex(/^(\/[^?#\s]*)?$/, 'a path prefix is empty or starts with "/" and has no query ("?"), fragment ("#") or whitespace, e.g. "/v2"');

export const PathModifier = z
  .object({
    replaceFullPath: FullPath.optional().describe("Replace the whole path with this one; the query string is kept."),
    replacePrefixMatch: PrefixReplacement.optional()
      .describe('Replace the path prefix the route matched (its "path.prefix", or "path.exact"; a trailing "/" of either is ignored) with this one: prefix "/foo", replacement "/xyz": "/foo/bar" becomes "/xyz/bar", and with replacement "" or "/" it becomes "/bar". Every match of the route must match the path on that same prefix. The query string is kept.'),
  })
  .strict()
  .superRefine((p, ctx) => {
    const n = (p.replaceFullPath !== undefined ? 1 : 0) + (p.replacePrefixMatch !== undefined ? 1 : 0);
    if (n !== 1) ctx.addIssue({ code: "custom", message: `give exactly one of "replaceFullPath" or "replacePrefixMatch" (got ${n})` });
  });

export const Hostname = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a lowercase DNS name without port or wildcard, e.g. "reviews.internal.example"');

export const UrlRewrite = z
  .object({
    path: PathModifier.optional().describe("Rewrite the path sent upstream."),
    hostname: Hostname.optional()
      .describe("Rewrite the host of the request URL sent upstream (what a Worker endpoint sees in request.url and Host). Origin URL endpoints always get their own host: a Workers fetch derives Host from the URL."),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.path === undefined && r.hostname === undefined) ctx.addIssue({ code: "custom", message: 'give "path", "hostname" or both' });
  })
  .describe("Rewrite the URL before forwarding. The client never sees the rewritten URL.");

export const Redirect = z
  .object({
    scheme: z.enum(["http", "https"]).optional().describe("Scheme of the Location; omitted: the request's. A new scheme without a port means that scheme's default port."),
    hostname: Hostname.optional().describe("Host of the Location; omitted: the request's."),
    port: z.number().int().min(1).max(65535).optional()
      .describe("Port of the Location; omitted: the request's port, or the default port of `scheme` when one is given. Port 80 for http and 443 for https are left out of the Location."),
    path: PathModifier.optional().describe("Path of the Location; omitted: the request's path. The query string is kept."),
    statusCode: z.literal(REDIRECT_STATUS_CODES).default(DEFAULT_REDIRECT_STATUS).describe("Status of the redirect. Default 302."),
  })
  .strict()
  .describe("Answer with a redirect instead of forwarding. A route with a redirect has no `to`, `rewrite`, `requestHeaders`, `fault`, `mirror` or `hedge`.");

export const DirectResponse = z
  .object({
    status: z.number().int().min(200).max(599).describe("Status of the response, 200-599."),
    body: z.string().optional().describe(`Body of the response (UTF-8), at most ${MAX_DIRECT_RESPONSE_BODY_BYTES} bytes; omitted: no body.`),
    contentType: z.string().min(1).max(256).regex(/^[\x20-\x7e]+$/, "a content type is printable ASCII, e.g. application/json").optional()
      .describe(`Content-Type of the body. Default "${DEFAULT_DIRECT_RESPONSE_CONTENT_TYPE}" when there is a body.`),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.body !== undefined) {
      const bytes = new TextEncoder().encode(d.body).length;
      if (bytes > MAX_DIRECT_RESPONSE_BODY_BYTES) ctx.addIssue({ code: "custom", path: ["body"], message: `body is ${bytes} bytes; at most ${MAX_DIRECT_RESPONSE_BODY_BYTES} are allowed` });
      if (d.status === 204 || d.status === 205 || d.status === 304) ctx.addIssue({ code: "custom", path: ["body"], message: `a ${d.status} response has no body; remove "body" or pick another status` });
    }
    if (d.contentType !== undefined && d.body === undefined) ctx.addIssue({ code: "custom", path: ["contentType"], message: 'contentType describes a body; give "body" too or remove it' });
  })
  .describe("Answer with this response instead of forwarding. A route with a direct response has no `to`, `rewrite`, `requestHeaders`, `fault`, `mirror` or `hedge`.");

/** The route fields of this vocabulary, spread into Route in schema.ts. */
export const routeFilterFields = {
  requestHeaders: HeaderModifier.optional().describe("Modify the request headers sent upstream (before the destination's own requestHeaders)."),
  responseHeaders: HeaderModifier.optional().describe("Modify the response headers (after the destination's own responseHeaders), also of this route's redirect or direct response and of the timeouts and upstream errors the sidecar answers for it."),
  rewrite: UrlRewrite.optional(),
  redirect: Redirect.optional(),
  directResponse: DirectResponse.optional(),
};

/** The destination fields of this vocabulary, spread into Destination in schema.ts. */
export const destinationFilterFields = {
  requestHeaders: HeaderModifier.optional().describe("Modify the request headers of requests sent to this destination, after the route's requestHeaders."),
  responseHeaders: HeaderModifier.optional().describe("Modify the response headers of answers from this destination, before the route's responseHeaders."),
};

type HeaderModifierPolicy = z.output<typeof HeaderModifier>;
type PathModifierPolicy = z.output<typeof PathModifier>;

/** The parts of a route `checkRouteFilters` looks at (structural, so schema.ts need not export its types here). */
export interface RouteFilterView {
  match?: { path?: { exact?: string; prefix?: string; regex?: string } }[];
  to: { subset: string; requestHeaders?: HeaderModifierPolicy; responseHeaders?: HeaderModifierPolicy }[];
  requestHeaders?: HeaderModifierPolicy;
  rewrite?: { path?: PathModifierPolicy };
  redirect?: { path?: PathModifierPolicy };
  directResponse?: unknown;
  fault?: unknown;
  mirror?: unknown;
  hedge?: unknown;
}

export const trimTrailingSlash = (path: string) => (path.endsWith("/") ? path.slice(0, -1) : path);

/**
 * The prefix `replacePrefixMatch` replaces: the path prefix (or exact path) every match of the
 * route tests, without a trailing "/". A string explains why there is none.
 */
export function matchedPathPrefix(match: RouteFilterView["match"]): { prefix: string } | { problem: string } {
  if (!match || match.length === 0) return { problem: "the route has no match, so no path prefix was matched; add a match with a path prefix" };
  let prefix: string | undefined;
  for (const [i, m] of match.entries()) {
    const value = m.path?.prefix ?? m.path?.exact;
    if (value === undefined) return { problem: `match[${i}] does not match the path on a prefix ("path.prefix" or "path.exact")` };
    const trimmed = trimTrailingSlash(value);
    if (prefix === undefined) prefix = trimmed;
    else if (prefix !== trimmed) return { problem: `match[0] and match[${i}] match different path prefixes ("${prefix}" and "${trimmed}"), so the prefix to replace is ambiguous; split them into two routes` };
  }
  return { prefix: prefix! };
}

const sameModifier = (a: HeaderModifierPolicy | undefined, b: HeaderModifierPolicy | undefined) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The rules of this vocabulary that span several fields of one route. */
export function checkRouteFilters(route: RouteFilterView, ctx: z.RefinementCtx): void {
  const answer = route.redirect !== undefined ? "redirect" : route.directResponse !== undefined ? "directResponse" : undefined;
  if (route.redirect !== undefined && route.directResponse !== undefined) {
    ctx.addIssue({ code: "custom", path: ["directResponse"], message: 'a route either redirects or answers directly: give "redirect" or "directResponse", not both' });
  }
  if (answer !== undefined) {
    if (route.to.length > 0) {
      ctx.addIssue({ code: "custom", path: ["to"], message: `a route with "${answer}" answers the request itself and never forwards it: remove "to" (or the ${answer})` });
    }
    for (const field of ["rewrite", "requestHeaders", "fault", "mirror", "hedge"] as const) {
      if (route[field] !== undefined) {
        ctx.addIssue({ code: "custom", path: [field], message: `"${field}" has no effect on a route that answers with "${answer}" (nothing is forwarded); remove it` });
      }
    }
  } else if (route.to.length === 0) {
    ctx.addIssue({ code: "custom", path: ["to"], message: 'a route that forwards needs at least one destination in "to" (or give "redirect" or "directResponse" to answer without forwarding)' });
  }

  for (const owner of ["rewrite", "redirect"] as const) {
    if (route[owner]?.path?.replacePrefixMatch === undefined) continue;
    const found = matchedPathPrefix(route.match);
    if ("problem" in found) {
      ctx.addIssue({ code: "custom", path: [owner, "path", "replacePrefixMatch"], message: `replacePrefixMatch replaces the path prefix the route matched, but ${found.problem} (or use replaceFullPath)` });
    }
  }

  // The split picks a subset, so two destinations naming one subset must agree on their modifiers.
  const bySubset = new Map<string, number>();
  route.to.forEach((d, i) => {
    const first = bySubset.get(d.subset);
    if (first === undefined) {
      bySubset.set(d.subset, i);
      return;
    }
    const other = route.to[first]!;
    if (!sameModifier(d.requestHeaders, other.requestHeaders) || !sameModifier(d.responseHeaders, other.responseHeaders)) {
      ctx.addIssue({ code: "custom", path: ["to", i], message: `to[${first}] already names subset "${d.subset}" with other header modifiers; give one destination per subset (add their weights)` });
    }
  });
}
