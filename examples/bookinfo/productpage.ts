// bookinfo "productpage": the app's entry. Calls details and reviews through their sidecars and
// renders what it got, naming which version of reviews answered. `?user=jason` (or the cookie
// `user`) sets the end-user header that policies can route on.
import { propagated } from "./propagate.ts";

interface Env {
  VERSION: string;
  DETAILS: Fetcher;
  REVIEWS: Fetcher;
}

interface Product {
  id: number;
  title: string;
  details: unknown;
  reviews: unknown;
  mesh: { reviewsVersion: string | null; reviewsEndpoint: string | null; detailsStatus: number; reviewsStatus: number };
}

async function callJson(binding: Fetcher, url: string, headers: Headers): Promise<{ status: number; body: unknown; endpoint: string | null }> {
  try {
    const res = await binding.fetch(url, { headers });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: keep the text so the page shows what the upstream said.
    }
    return { status: res.status, body, endpoint: res.headers.get("x-edgemesh-endpoint") };
  } catch (err) {
    return { status: 502, body: { error: (err as Error).message }, endpoint: null };
  }
}

async function product(request: Request, env: Env, id: number, user: string | null): Promise<Product> {
  const headers = propagated(request.headers, user);
  const [details, reviews] = await Promise.all([
    callJson(env.DETAILS, `http://details/details/${id}`, headers),
    callJson(env.REVIEWS, `http://reviews/reviews/${id}`, headers),
  ]);
  const reviewsVersion = (reviews.body as { version?: string } | null)?.version ?? null;
  return {
    id,
    title: "The Comedy of Errors",
    details: details.body,
    reviews: reviews.body,
    mesh: { reviewsVersion, reviewsEndpoint: reviews.endpoint, detailsStatus: details.status, reviewsStatus: reviews.status },
  };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(p: Product, user: string | null): string {
  const reviews = (p.reviews as { reviews?: { reviewer: string; text: string; rating?: { stars?: number; color?: string | null } | null }[] }).reviews ?? [];
  const items = reviews
    .map((r) => {
      const stars = r.rating?.stars ? `<span class="stars" style="color:${r.rating.color ?? "black"}">${"★".repeat(r.rating.stars)}</span>` : "";
      return `<li><blockquote>${escapeHtml(r.text)}</blockquote><small>— ${escapeHtml(r.reviewer)}</small> ${stars}</li>`;
    })
    .join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(p.title)} — bookinfo on edgemesh</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}.mesh{color:#555}</style></head>
<body><h1>${escapeHtml(p.title)}</h1>
<p class="mesh">Signed in as <b>${escapeHtml(user ?? "nobody")}</b> (try <a href="?user=jason">?user=jason</a>) ·
reviews served by <b id="reviews-version">${escapeHtml(p.mesh.reviewsVersion ?? "none")}</b></p>
<h2>Details</h2><pre id="details">${escapeHtml(JSON.stringify(p.details, null, 2))}</pre>
<h2>Reviews</h2><ul id="reviews">${items || `<li>Reviews unavailable (status ${p.mesh.reviewsStatus})</li>`}</ul>
</body></html>`;
}

function userOf(request: Request, url: URL): string | null {
  const fromQuery = url.searchParams.get("user");
  if (fromQuery) return fromQuery;
  const cookie = request.headers.get("cookie") ?? "";
  return /(?:^|;\s*)user=([^;]+)/.exec(cookie)?.[1] ?? request.headers.get("end-user");
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok");
    const user = userOf(request, url);
    const api = /^\/api\/v1\/products\/(\d+)$/.exec(url.pathname);
    if (api) return Response.json(await product(request, env, Number(api[1]), user));
    if (url.pathname === "/" || url.pathname === "/productpage") {
      const html = page(await product(request, env, 0, user), user);
      return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    return new Response("not found\n", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
