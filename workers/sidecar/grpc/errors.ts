// Answers the sidecar makes itself, in the caller's own protocol: a gRPC-Web client gets a
// trailers-only response it can read, a Connect client a Connect error, never an HTTP error page
// its library would turn into a vague "unknown". Each keeps x-edgemesh-generated and the reason
// header, so operators still tell a mesh refusal from an upstream answer.
import { codeForHttpStatus, connectCodeName, GrpcCode, httpStatusForCode } from "./codes.ts";
import { encodeBase64, encodeEnvelope, FLAG_END_STREAM, FLAG_TRAILER } from "./envelope.ts";
import type { RpcCall } from "./protocol.ts";

const utf8 = new TextEncoder();

/** grpc-message is percent-encoded: everything outside printable ASCII, and "%" itself. */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const byte of utf8.encode(message)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * gRPC and gRPC-Web (binary or text): a trailers-only response, HTTP 200 with the status in the
 * headers and no body. Every gRPC-Web client reads it, and it needs no trailers, so the sidecar
 * can send it even where real trailers cannot pass.
 */
export function trailersOnlyResponse(contentType: string, code: GrpcCode, message: string, extraHeaders: HeadersInit = {}): Response {
  const headers = new Headers(extraHeaders);
  headers.set("content-type", contentType);
  headers.set("grpc-status", String(code));
  if (message !== "") headers.set("grpc-message", encodeGrpcMessage(message));
  return new Response(null, { status: 200, headers });
}

/** The gRPC-Web trailer frame carrying a status (base64 for the text variant): for ending a body the sidecar writes. */
export function grpcWebTrailerFrame(code: GrpcCode, message: string, text: boolean): Uint8Array {
  let block = `grpc-status: ${code}\r\n`;
  if (message !== "") block += `grpc-message: ${encodeGrpcMessage(message)}\r\n`;
  const frame = encodeEnvelope(FLAG_TRAILER, utf8.encode(block));
  return text ? utf8.encode(encodeBase64(frame)) : frame;
}

/** Connect unary: the HTTP status of the code and `{"code": "...", "message": "..."}`. */
export function connectUnaryErrorResponse(code: GrpcCode, message: string, extraHeaders: HeadersInit = {}): Response {
  const headers = new Headers(extraHeaders);
  headers.set("content-type", "application/json");
  const body: Record<string, string> = { code: connectCodeName(code) };
  if (message !== "") body.message = message;
  return new Response(JSON.stringify(body), { status: httpStatusForCode(code), headers });
}

/** The Connect end-of-stream message carrying an error: for ending a stream the sidecar writes. */
export function connectEndStreamFrame(code: GrpcCode, message: string): Uint8Array {
  const error: Record<string, string> = { code: connectCodeName(code) };
  if (message !== "") error.message = message;
  return encodeEnvelope(FLAG_END_STREAM, utf8.encode(JSON.stringify({ error })));
}

/** Connect streaming: HTTP 200 and a body of just the end-of-stream message with the error. */
export function connectStreamErrorResponse(contentType: string, code: GrpcCode, message: string, extraHeaders: HeadersInit = {}): Response {
  const headers = new Headers(extraHeaders);
  headers.set("content-type", contentType);
  return new Response(connectEndStreamFrame(code, message), { status: 200, headers });
}

/** An error for `call` in its own protocol. */
export function rpcErrorResponse(call: RpcCall, code: GrpcCode, message: string, extraHeaders: HeadersInit = {}): Response {
  switch (call.protocol) {
    case "grpc":
    case "grpc-web":
    case "grpc-web-text":
      return trailersOnlyResponse(call.contentType, code, message, extraHeaders);
    case "connect-unary":
      return connectUnaryErrorResponse(code, message, extraHeaders);
    case "connect-stream":
      return connectStreamErrorResponse(call.contentType, code, message, extraHeaders);
  }
}

export const NATIVE_GRPC_MESSAGE =
  "native gRPC (application/grpc) needs HTTP/2 trailers, which cannot pass a Cloudflare Worker; " +
  "call with gRPC-Web or Connect, or enable gRPC on the zone so Cloudflare converts gRPC to gRPC-Web in front of the Worker";

/**
 * The sidecar's answer to native gRPC. Passing it through would return a body whose status (in
 * HTTP trailers) never arrives, which a client reports as a confusing protocol error after the
 * upstream has done the work. A trailers-only UNIMPLEMENTED names the problem and the ways out;
 * UNIMPLEMENTED because the call is not supported on this path and retrying cannot help.
 */
export function grpcNativeUnsupported(call: RpcCall): Response {
  return trailersOnlyResponse(call.contentType, GrpcCode.UNIMPLEMENTED, NATIVE_GRPC_MESSAGE, {
    "x-edgemesh-generated": "1",
    "x-edgemesh-error": "grpc-native-unsupported",
  });
}

/** The sidecar's reason headers, as meshError and faultResponse set them (responses.ts, fault.ts). */
const REASON_HEADERS = ["x-edgemesh-no-route", "x-edgemesh-timeout", "x-edgemesh-overloaded", "x-edgemesh-denied-by", "x-edgemesh-rate-limited", "x-edgemesh-fault", "x-edgemesh-error"] as const;

export interface MeshErrorMapping {
  code: GrpcCode;
  /** The reason header and its value, kept on the converted answer. */
  header: string;
  reason: string;
}

/**
 * Which gRPC code a response the sidecar made itself stands for, from its reason header:
 *
 * - no route matched -> UNIMPLEMENTED: for an RPC the path is the method, so "no route takes this
 *   path" is "this method is not served here", what a gRPC server answers for an unknown method.
 *   NOT_FOUND would tell the client that the thing it asked for does not exist.
 * - timeouts (route, per-try, the caller's deadline) -> DEADLINE_EXCEEDED.
 * - shed by the circuit breaker (max-pending, pending-timeout) -> UNAVAILABLE: a transient
 *   overload that a retry with backoff, or another instance, may get past. RESOURCE_EXHAUSTED is
 *   for the caller's own quota (a rate limit, x-edgemesh-rate-limited or any mesh 429): retrying
 *   at once does not help.
 * - denied by access policy -> PERMISSION_DENIED; 401 (no or bad identity) -> UNAUTHENTICATED.
 * - no endpoint, connect failure, upstream reset, missing binding, no snapshot -> UNAVAILABLE:
 *   the service cannot be reached just now, exactly what gRPC clients retry.
 * - an injected fault -> the gRPC client's reading of its HTTP status (503 -> UNAVAILABLE, ...).
 * - a sidecar bug (500 sidecar-internal-error) -> INTERNAL.
 */
export function meshErrorCode(status: number, headers: Headers): MeshErrorMapping {
  for (const header of REASON_HEADERS) {
    const reason = headers.get(header);
    if (reason === null) continue;
    switch (header) {
      case "x-edgemesh-no-route":
        return { code: GrpcCode.UNIMPLEMENTED, header, reason };
      case "x-edgemesh-timeout":
        return { code: GrpcCode.DEADLINE_EXCEEDED, header, reason };
      case "x-edgemesh-overloaded":
        return { code: GrpcCode.UNAVAILABLE, header, reason };
      case "x-edgemesh-denied-by":
        return { code: status === 401 ? GrpcCode.UNAUTHENTICATED : GrpcCode.PERMISSION_DENIED, header, reason };
      case "x-edgemesh-rate-limited":
        return { code: GrpcCode.RESOURCE_EXHAUSTED, header, reason };
      case "x-edgemesh-fault":
        return { code: codeForHttpStatus(status), header, reason };
      case "x-edgemesh-error":
        return { code: status === 500 ? GrpcCode.INTERNAL : status === 429 ? GrpcCode.RESOURCE_EXHAUSTED : status >= 500 ? GrpcCode.UNAVAILABLE : codeForHttpStatus(status), header, reason };
    }
  }
  return { code: status === 429 ? GrpcCode.RESOURCE_EXHAUSTED : codeForHttpStatus(status), header: "x-edgemesh-error", reason: `http-${status}` };
}

/** Whether a response is one the sidecar made itself and has not put in an RPC protocol yet. */
export function isPlainMeshError(response: Response): boolean {
  if (response.headers.get("x-edgemesh-generated") !== "1") return false;
  const type = response.headers.get("content-type") ?? "";
  return !type.startsWith("application/grpc") && !type.startsWith("application/connect") && response.headers.get("grpc-status") === null;
}

/**
 * Puts a response the sidecar made itself (meshError, faultResponse) into the caller's protocol;
 * any other response is returned as it is. The message names the reason and, when the plain
 * answer was JSON with a detail or a timeout, those too.
 */
export async function toCallerProtocol(call: RpcCall, response: Response): Promise<Response> {
  if (!isPlainMeshError(response)) return response;
  const { code, header, reason } = meshErrorCode(response.status, response.headers);
  let message = `edgemesh: ${reason}`;
  if ((response.headers.get("content-type") ?? "").startsWith("application/json")) {
    const detail = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    const extras = Object.entries(detail).filter(([k, v]) => k !== "error" && (typeof v === "string" || typeof v === "number"));
    if (extras.length > 0) message += ` (${extras.map(([k, v]) => `${k}: ${v}`).join(", ")})`;
  } else {
    // Not awaited: a teed body's cancel settles only once every branch is cancelled.
    void response.body?.cancel().catch(() => {});
  }
  const keep: Record<string, string> = { "x-edgemesh-generated": "1", [header]: reason };
  const retryAfter = response.headers.get("retry-after");
  if (retryAfter !== null) keep["retry-after"] = retryAfter;
  return rpcErrorResponse(call, code, message, keep);
}
