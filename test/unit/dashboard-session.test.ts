import { describe, expect, it } from "vitest";
import { requiredAdminScope } from "../../auth/admin-token.ts";
import { base64UrlDecode, base64UrlEncode } from "../../auth/verify.ts";
import {
  cookieValue, DASHBOARD_WATCH_PATH, issueWatchTicket, verifyWatchTicket, WATCH_TICKET_COOKIE, WATCH_TICKET_TTL_MS, watchTicketCookie,
} from "../../workers/control/dashboard-session.ts";

const SECRET = "edgemesh-local-admin-token";
const NOW = 1_800_000_000_000;

describe("watch tickets", () => {
  it("opens the stream of its mesh until it expires", async () => {
    const { ticket, expiresAtMs } = await issueWatchTicket(SECRET, "bookinfo", NOW);
    expect(expiresAtMs).toBe(NOW + WATCH_TICKET_TTL_MS);
    expect(await verifyWatchTicket(SECRET, ticket, "bookinfo", NOW + WATCH_TICKET_TTL_MS - 1)).toEqual({ ok: true, mesh: "bookinfo", expiresAtMs });
    expect(await verifyWatchTicket(SECRET, ticket, "bookinfo", NOW + WATCH_TICKET_TTL_MS)).toEqual({ ok: false, reason: "expired" });
    expect(await verifyWatchTicket(SECRET, ticket, "other", NOW)).toEqual({ ok: false, reason: "other-mesh" });
  });

  it("is refused when signed with another secret, so rotating the admin token ends every ticket", async () => {
    const { ticket } = await issueWatchTicket("an-old-token", "bookinfo", NOW);
    expect(await verifyWatchTicket(SECRET, ticket, "bookinfo", NOW)).toEqual({ ok: false, reason: "bad-signature" });
  });

  it("is refused when its claims are edited (a later expiry, another mesh)", async () => {
    const { ticket } = await issueWatchTicket(SECRET, "bookinfo", NOW);
    const [version, payload, signature] = ticket.split(".");
    const claims = JSON.parse(new TextDecoder().decode(base64UrlDecode(payload!)));
    const forged = base64UrlEncode(new TextEncoder().encode(JSON.stringify({ ...claims, expiresAtMs: NOW + 86_400_000 })));
    expect(await verifyWatchTicket(SECRET, `${version}.${forged}.${signature}`, "bookinfo", NOW + WATCH_TICKET_TTL_MS + 1)).toEqual({ ok: false, reason: "bad-signature" });
  });

  it("is refused when missing or malformed", async () => {
    expect(await verifyWatchTicket(SECRET, undefined, "bookinfo", NOW)).toEqual({ ok: false, reason: "missing" });
    expect(await verifyWatchTicket(SECRET, "", "bookinfo", NOW)).toEqual({ ok: false, reason: "missing" });
    for (const bad of ["w1.abc", "w2.a.b", "w1.!!.??", `w1.${"a".repeat(2000)}.b`]) {
      expect((await verifyWatchTicket(SECRET, bad, "bookinfo", NOW)).ok).toBe(false);
    }
  });

  it("travels in an HttpOnly, SameSite=Strict cookie sent only to the watch route", () => {
    const cookie = watchTicketCookie("w1.x.y", false);
    expect(cookie).toBe(`${WATCH_TICKET_COOKIE}=w1.x.y; Path=${DASHBOARD_WATCH_PATH}; Max-Age=60; HttpOnly; SameSite=Strict`);
    expect(watchTicketCookie("w1.x.y", true)).toMatch(/; Secure$/);
  });
});

describe("cookieValue", () => {
  it("finds one cookie among others", () => {
    expect(cookieValue("a=1; edgemesh_watch=w1.x.y; b=2", "edgemesh_watch")).toBe("w1.x.y");
    expect(cookieValue("xedgemesh_watch=1", "edgemesh_watch")).toBeUndefined();
    expect(cookieValue(null, "edgemesh_watch")).toBeUndefined();
  });
});

describe("what the dashboard needs of a scoped admin token", () => {
  it("reads need read, so a read-only token can sign in and see everything; only rollback needs write", () => {
    const reads: [string, string][] = [
      ["GET", "/v1/dashboard/session"], ["GET", "/v1/dashboard/sidecars/reviews"], ["GET", "/v1/metrics/edges"], ["POST", "/v1/analytics/sql"],
      ["GET", "/v1/policy"], ["GET", "/v1/policy/history"], ["GET", "/v1/policy/diff"], ["GET", "/v1/registry"], ["GET", "/v1/health"],
      ["GET", "/v1/health/history"], ["GET", "/v1/sync"], ["GET", "/v1/events"], ["GET", "/v1/snapshot/reviews"],
    ];
    for (const [method, path] of reads) expect(requiredAdminScope(method, path), `${method} ${path}`).toBe("read");
    expect(requiredAdminScope("POST", "/v1/policy/rollback")).toBe("write");
  });
});
