// Admin bearer-token check, shared by the control plane and the sidecars (auth/ is the home of
// credential helpers: pure, Web-standard, importing nothing else of ours). Compared in constant
// time so the token cannot be guessed byte by byte.

function timingSafeEqual(a: string, b: string): boolean {
  const enc = new TextEncoder();
  const left = enc.encode(a);
  const right = enc.encode(b);
  // Compare over the longer length so the time does not reveal where a shorter guess ends.
  const length = Math.max(left.length, right.length);
  let diff = left.length ^ right.length;
  for (let i = 0; i < length; i++) diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return diff === 0;
}

/** True when the Authorization header carries the admin token. */
export function hasAdminToken(authorization: string | null | undefined, token: string): boolean {
  if (!authorization || !token) return false;
  const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
  return match !== null && timingSafeEqual(match[1]!, token);
}
