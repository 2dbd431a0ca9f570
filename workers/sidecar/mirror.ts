// Mirroring: a share of requests is shadowed to another subset or service in the background. The
// shadow is built from the buffered body, its response is discarded, and nothing about it can
// delay or fail the real request.
import type { CompiledEndpoint, CompiledMirror } from "../../policies/snapshot.ts";
import { targetUrl } from "./forward.ts";

export const SHADOW_HEADER = "x-edgemesh-shadow";

const nextShadow = new WeakMap<CompiledMirror, number>();

export interface MirrorStats {
  sent: number;
  failed: number;
  skippedUnbuffered: number;
}

export const mirrorStats: MirrorStats = { sent: 0, failed: 0, skippedUnbuffered: 0 };

/** Whether this request is shadowed; `random` in [0, 1). */
export function shouldMirror(mirror: CompiledMirror, random: number): boolean {
  return mirror.endpoints.length > 0 && random * 100 < mirror.percent;
}

/** Round robin over the mirror's endpoints. */
export function pickMirrorEndpoint(mirror: CompiledMirror): CompiledEndpoint {
  const i = nextShadow.get(mirror) ?? 0;
  nextShadow.set(mirror, i + 1 >= mirror.endpoints.length ? 0 : i + 1);
  return mirror.endpoints[i]!;
}

/** Headers of the shadow: the original's, marked as a shadow so the target can tell. */
export function shadowHeaders(original: Headers): Headers {
  const headers = new Headers(original);
  headers.set(SHADOW_HEADER, "1");
  return headers;
}

/**
 * Sends one shadow and throws its answer away. Never rejects: it runs under ctx.waitUntil, beside
 * the real request, with its own deadline.
 */
export async function sendShadow(target: { fetch(request: Request): Promise<Response> }, endpoint: CompiledEndpoint, url: URL, method: string, headers: Headers, body: Uint8Array | null, timeoutMs: number): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort("shadow timeout"), timeoutMs);
  try {
    const response = await target.fetch(new Request(targetUrl(endpoint, url), { method, headers: shadowHeaders(headers), body, redirect: "manual", signal: controller.signal }));
    await response.body?.cancel();
    mirrorStats.sent++;
  } catch {
    mirrorStats.failed++;
  } finally {
    clearTimeout(timer);
  }
}
