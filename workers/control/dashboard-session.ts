// Watch tickets: how the dashboard opens the watch stream. Browsers cannot put an Authorization
// header on a WebSocket, so the dashboard trades its admin token (in a header, on an ordinary /v1
// call) for a short-lived ticket in an HttpOnly, SameSite=Strict cookie whose path is only the
// dashboard's watch route. The ticket is signed with a key derived from the control Worker's
// admin secret and grants one thing: reading the event stream of one mesh. No route that changes
// anything accepts it, so the cookie opens no CSRF hole: writes still need the token in a header.

import { base64UrlDecode, base64UrlEncode } from "../../auth/verify.ts";

export const WATCH_TICKET_COOKIE = "edgemesh_watch";
/** Where the dashboard's watch stream is served; the cookie is sent nowhere else. */
export const DASHBOARD_WATCH_PATH = "/dashboard/watch";
/** Long enough to open a WebSocket right after asking; the dashboard asks again on every reconnect. */
export const WATCH_TICKET_TTL_MS = 60_000;

const TICKET_VERSION = "w1";
const encoder = new TextEncoder();

interface TicketClaims {
  /** The mesh whose stream the ticket opens. */
  mesh: string;
  expiresAtMs: number;
}

export type TicketVerdict = { ok: true; mesh: string; expiresAtMs: number } | { ok: false; reason: "missing" | "malformed" | "bad-signature" | "expired" | "other-mesh" };

// A derived key is plain data for this isolate (no I/O object), so it is kept across requests;
// a changed secret derives a new one.
let cachedKey: { secret: string; key: Promise<CryptoKey> } | undefined;

/** The HMAC key for tickets: derived from the admin secret, for this purpose only. */
function ticketKey(secret: string): Promise<CryptoKey> {
  if (cachedKey?.secret !== secret) {
    const key = crypto.subtle
      .importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"])
      .then((base) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: encoder.encode("edgemesh dashboard"), info: encoder.encode("watch ticket v1") },
          base,
          { name: "HMAC", hash: "SHA-256", length: 256 },
          false,
          ["sign", "verify"],
        ),
      );
    cachedKey = { secret, key };
  }
  return cachedKey.key;
}

/** A ticket for the watch stream of `mesh`, valid for WATCH_TICKET_TTL_MS from `nowMs`. */
export async function issueWatchTicket(secret: string, mesh: string, nowMs: number): Promise<{ ticket: string; expiresAtMs: number }> {
  const claims: TicketClaims = { mesh, expiresAtMs: nowMs + WATCH_TICKET_TTL_MS };
  const body = `${TICKET_VERSION}.${base64UrlEncode(encoder.encode(JSON.stringify(claims)))}`;
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", await ticketKey(secret), encoder.encode(body)));
  return { ticket: `${body}.${base64UrlEncode(signature)}`, expiresAtMs: claims.expiresAtMs };
}

/** Checks a ticket's signature (in constant time, by crypto.subtle.verify), expiry and mesh. */
export async function verifyWatchTicket(secret: string, ticket: string | undefined, mesh: string, nowMs: number): Promise<TicketVerdict> {
  if (!ticket) return { ok: false, reason: "missing" };
  const parts = ticket.split(".");
  if (parts.length !== 3 || parts[0] !== TICKET_VERSION || ticket.length > 1024) return { ok: false, reason: "malformed" };
  const signature = base64UrlDecode(parts[2]!);
  const payload = base64UrlDecode(parts[1]!);
  if (!signature || !payload) return { ok: false, reason: "malformed" };
  const signed = await crypto.subtle.verify("HMAC", await ticketKey(secret), signature, encoder.encode(`${parts[0]}.${parts[1]}`));
  if (!signed) return { ok: false, reason: "bad-signature" };
  let claims: Partial<TicketClaims>;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload)) as Partial<TicketClaims>;
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (typeof claims.expiresAtMs !== "number" || typeof claims.mesh !== "string") return { ok: false, reason: "malformed" };
  if (claims.expiresAtMs <= nowMs) return { ok: false, reason: "expired" };
  if (claims.mesh !== mesh) return { ok: false, reason: "other-mesh" };
  return { ok: true, mesh: claims.mesh, expiresAtMs: claims.expiresAtMs };
}

/** The Set-Cookie value for a ticket. `secure` when the dashboard is served over https. */
export function watchTicketCookie(ticket: string, secure: boolean): string {
  return [
    `${WATCH_TICKET_COOKIE}=${ticket}`,
    `Path=${DASHBOARD_WATCH_PATH}`,
    `Max-Age=${WATCH_TICKET_TTL_MS / 1000}`,
    "HttpOnly",
    "SameSite=Strict",
    ...(secure ? ["Secure"] : []),
  ].join("; ");
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
