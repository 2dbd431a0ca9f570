// Reading a gRPC status out of the places each protocol puts it: the grpc-status header of a
// trailers-only response, the trailer frame at the end of a gRPC-Web body, a Connect unary error's
// JSON body (with its HTTP status), and the Connect end-of-stream message. Pure parsers; the
// streaming side is in inspect.ts.
import { codeForHttpStatus, codeFromConnectName, GrpcCode, isGrpcCode } from "./codes.ts";
import type { RpcCall } from "./protocol.ts";

/** Where the status was read: for telemetry and for debugging a classification. */
export type StatusSource =
  | "header" // grpc-status in the response headers (a trailers-only response)
  | "trailer" // the gRPC-Web trailer frame
  | "end-stream" // the Connect end-of-stream message
  | "error-body" // a Connect unary error's JSON
  | "http-status" // inferred from the HTTP status (no gRPC status present, or Connect unary success)
  | "missing" // the body ended without any status
  | "aborted"; // the body was cut: by the client (CANCELLED) or the upstream (UNAVAILABLE)

export interface RpcStatus {
  code: GrpcCode;
  message: string;
  source: StatusSource;
}

const utf8 = new TextDecoder();

/** grpc-message is percent-encoded UTF-8; a malformed escape is kept as it is rather than lost. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A grpc-status value to a code; anything that is not 0-16 is UNKNOWN, as gRPC clients read it. */
export function parseGrpcStatus(value: string): GrpcCode {
  const trimmed = value.trim();
  const n = /^\d{1,2}$/.test(trimmed) ? Number(trimmed) : -1;
  return isGrpcCode(n) ? n : GrpcCode.UNKNOWN;
}

/** gRPC and gRPC-Web: the status in the headers (trailers-only), or from a non-200 HTTP status. */
function grpcStatusAtHeaders(httpStatus: number, headers: Headers): RpcStatus | undefined {
  const status = headers.get("grpc-status");
  if (status !== null) {
    return { code: parseGrpcStatus(status), message: decodeGrpcMessage(headers.get("grpc-message") ?? ""), source: "header" };
  }
  if (httpStatus !== 200) return { code: codeForHttpStatus(httpStatus), message: `HTTP ${httpStatus}`, source: "http-status" };
  return undefined;
}

/**
 * The status when the response headers alone tell it, or undefined when only the body can:
 * a gRPC-Web 200 without grpc-status (the trailer frame will say), a Connect unary error (its
 * JSON says), a Connect stream (its end-of-stream message says).
 */
export function statusFromHeaders(call: RpcCall, httpStatus: number, headers: Headers): RpcStatus | undefined {
  switch (call.protocol) {
    case "grpc-web":
    case "grpc-web-text":
    case "grpc":
      return grpcStatusAtHeaders(httpStatus, headers);
    case "connect-unary":
      return httpStatus === 200 ? { code: GrpcCode.OK, message: "", source: "http-status" } : undefined;
    case "connect-stream":
      return httpStatus === 200 ? undefined : { code: codeForHttpStatus(httpStatus), message: `HTTP ${httpStatus}`, source: "http-status" };
  }
}

/** A gRPC-Web trailer frame's payload: header lines, names case-insensitive. */
export function statusFromTrailer(payload: Uint8Array): RpcStatus {
  let code: GrpcCode | undefined;
  let message = "";
  for (const line of utf8.decode(payload).split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === "grpc-status") code = parseGrpcStatus(line.slice(colon + 1));
    else if (name === "grpc-message") message = decodeGrpcMessage(line.slice(colon + 1).trim());
  }
  if (code === undefined) return { code: GrpcCode.INTERNAL, message: "trailer frame without grpc-status", source: "trailer" };
  return { code, message, source: "trailer" };
}

function errorOf(value: unknown): { code: GrpcCode; message: string } | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { code, message } = value as { code?: unknown; message?: unknown };
  const parsed = codeFromConnectName(code);
  if (parsed === undefined) return undefined;
  return { code: parsed, message: typeof message === "string" ? message : "" };
}

/** A Connect end-of-stream message: `{}` or `{"metadata":…}` is OK, `{"error":{code,message}}` is not. */
export function statusFromEndStream(payload: Uint8Array): RpcStatus {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(payload));
  } catch {
    return { code: GrpcCode.INTERNAL, message: "end-of-stream message is not JSON", source: "end-stream" };
  }
  const error = (parsed as { error?: unknown } | null)?.error;
  if (error === undefined || error === null) return { code: GrpcCode.OK, message: "", source: "end-stream" };
  // An error without a known code is read as UNKNOWN, as Connect clients do.
  return { ...(errorOf(error) ?? { code: GrpcCode.UNKNOWN, message: "end-of-stream error without a known code" }), source: "end-stream" };
}

/**
 * A Connect unary error: `{"code": "unavailable", "message": "..."}` with an HTTP status. A body
 * that is not a Connect error (a proxy's error page) falls back to the HTTP status.
 */
export function statusFromConnectError(httpStatus: number, body: Uint8Array): RpcStatus {
  try {
    const error = errorOf(JSON.parse(utf8.decode(body)));
    if (error) return { ...error, source: "error-body" };
  } catch {
    // not JSON: fall through
  }
  return { code: codeForHttpStatus(httpStatus), message: `HTTP ${httpStatus}`, source: "http-status" };
}
