// bookinfo "reviews": v1 shows no stars, v2 black stars, v3 red stars; v2 and v3 call ratings
// through the ratings sidecar.
import { propagated } from "./propagate.ts";
import { resourceHandler } from "./resource.ts";

interface Env {
  VERSION: "v1" | "v2" | "v3";
  RATINGS: Fetcher;
}

const REVIEWS = [
  { reviewer: "Reviewer1", text: "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!" },
  { reviewer: "Reviewer2", text: "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare." },
];

export default resourceHandler<Env>("reviews", async (id, env, request) => {
  let ratings: Record<string, number> | { error: string } | null = null;
  if (env.VERSION !== "v1") {
    const res = await env.RATINGS.fetch(`http://ratings/ratings/${id}`, { headers: propagated(request.headers) });
    ratings = res.ok ? ((await res.json()) as { ratings: Record<string, number> }).ratings : { error: `ratings unavailable (${res.status})` };
  }
  const color = env.VERSION === "v2" ? "black" : env.VERSION === "v3" ? "red" : null;
  return Response.json({
    id,
    version: env.VERSION,
    reviews: REVIEWS.map((r) => ({
      ...r,
      rating: ratings && !("error" in ratings) ? { stars: ratings[r.reviewer], color } : ratings,
    })),
  });
});
