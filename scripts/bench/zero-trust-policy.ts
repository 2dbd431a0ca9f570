// The service the zero-trust benchmarks measure: 10 access rules (5 deny rules a caller of the
// benchmark does not match, then 5 allow rules of which the last admits it: the whole list is
// walked) and a per-caller rate limit no run reaches. The caller is "nightly", with a mesh token,
// GET /bench.

export const BENCH_IDENTITIES = ["nightly", "billing", "audit", "backup", "report"];

export const TEN_RULES = {
  deny: [
    { name: "no-admin", paths: [{ prefix: "/admin" }] },
    { name: "no-billing-writes", from: ["billing"], methods: ["POST", "PUT", "DELETE"] },
    { name: "no-internal", paths: [{ regex: "/internal/[a-z]+" }] },
    { name: "no-debug-header", headers: { "x-debug": { present: true } } },
    { name: "no-outsiders", from: ["external"] },
  ],
  allow: [
    { name: "billing", from: ["billing"], paths: [{ prefix: "/billing/" }] },
    { name: "audit", from: ["audit"], methods: ["GET"] },
    { name: "backup", from: ["backup"], paths: [{ regex: "/backup/[0-9]+" }] },
    { name: "report", from: ["report"], headers: { "x-report": { exact: "yes" } } },
    { name: "nightly", from: ["nightly"], methods: ["GET", "HEAD"], paths: [{ prefix: "/bench" }] },
  ],
};

export const ONE_LIMIT = [{ name: "per-caller", per: ["caller"], requests: 1_000_000_000, periodMs: 1000 }];
