// Which RPC protocol a request speaks, read from its method, content-type and (for Connect GET)
// its query, once per request and cheaply: a plain HTTP request costs one header read and a few
// string compares. Everything else in grpc/ takes the answer as given.
//
//   gRPC-Web         POST, application/grpc-web, application/grpc-web+proto|+json|+<codec>
//   gRPC-Web text    POST, application/grpc-web-text, application/grpc-web-text+proto (base64 body)
//   Connect unary    POST, application/<codec> with connect-protocol-version: 1
//                    GET with ?connect=v1 (and encoding=, message=) for side-effect-free methods
//   Connect stream   POST, application/connect+<codec>
//   gRPC (native)    POST, application/grpc, application/grpc+<codec>: needs HTTP/2 trailers, which a
//                    Worker cannot send or receive (see grpcNativeUnsupported in errors.ts)

export type RpcProtocol = "grpc-web" | "grpc-web-text" | "connect-unary" | "connect-stream" | "grpc";

export interface RpcCall {
  protocol: RpcProtocol;
  /** The message codec: "proto", "json" or another name after the "+" (gRPC-Web's default is proto). */
  codec: string;
  /** The request's content-type as sent (lower-cased), echoed on answers the sidecar makes itself. */
  contentType: string;
  /** "edgemesh.example.v1.GreeterService" from /edgemesh.example.v1.GreeterService/Greet; "" when the path is not /service/method. */
  service: string;
  /** "Greet"; "" when the path is not /service/method. */
  method: string;
}

/** The media type without parameters, lower-cased: "application/grpc-web+proto". */
function mediaType(contentType: string): string {
  const semicolon = contentType.indexOf(";");
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

function codecAfter(type: string, prefix: string, fallback: string): string | undefined {
  if (type === prefix) return fallback;
  if (type.length > prefix.length + 1 && type.startsWith(prefix) && type[prefix.length] === "+") return type.slice(prefix.length + 1);
  return undefined;
}

/**
 * Splits "/pkg.Service/Method" into its parts. Anything else (a prefix before the service, an
 * empty part, more segments) gives empty strings: the call is still recognised by its
 * content-type, it just names no method for telemetry.
 */
export function serviceAndMethod(path: string): { service: string; method: string } {
  const slash = path.indexOf("/", 1);
  if (path[0] !== "/" || slash < 2 || slash === path.length - 1 || path.indexOf("/", slash + 1) >= 0) return { service: "", method: "" };
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

function call(protocol: RpcProtocol, codec: string, contentType: string, path: string): RpcCall {
  return { protocol, codec, contentType, ...serviceAndMethod(path) };
}

/**
 * The RPC protocol of a request, or undefined for plain HTTP; `search` is the URL's raw query
 * ("?connect=v1&encoding=json&message=..." or ""). A JSON POST without
 * connect-protocol-version is plain HTTP: a REST call looks exactly like that.
 */
export function detectRpc(method: string, path: string, search: string, headers: Headers): RpcCall | undefined {
  if (method === "GET") {
    // Connect's GET form carries no content-type; the query names protocol and codec. The raw
    // query is searched first so that ordinary GETs never pay for parsing it.
    if (!search.includes("connect=v1")) return undefined;
    const q = new URLSearchParams(search);
    if (q.get("connect") !== "v1") return undefined;
    const codec = q.get("encoding") ?? "proto";
    return call("connect-unary", codec, `application/${codec}`, path);
  }
  if (method !== "POST") return undefined;
  const raw = headers.get("content-type");
  // Media types are case-insensitive; the first letter rules out most non-RPC bodies before any copy.
  if (raw === null || (raw.charCodeAt(0) | 0x20) !== 0x61) return undefined;
  const type = mediaType(raw);
  if (!type.startsWith("application/")) return undefined;
  let codec: string | undefined;
  if (type.startsWith("application/grpc")) {
    if ((codec = codecAfter(type, "application/grpc-web-text", "proto")) !== undefined) return call("grpc-web-text", codec, type, path);
    if ((codec = codecAfter(type, "application/grpc-web", "proto")) !== undefined) return call("grpc-web", codec, type, path);
    if ((codec = codecAfter(type, "application/grpc", "proto")) !== undefined) return call("grpc", codec, type, path);
    return undefined;
  }
  if ((codec = codecAfter(type, "application/connect", "")) !== undefined) return codec === "" ? undefined : call("connect-stream", codec, type, path);
  if (headers.get("connect-protocol-version") === "1") return call("connect-unary", type.slice("application/".length), type, path);
  return undefined;
}

/** Whether the protocol's response body is a sequence of length-prefixed frames (envelopes). */
export function isEnveloped(protocol: RpcProtocol): boolean {
  return protocol !== "connect-unary";
}
