// The example GreeterService. Each instance can be told to misbehave, so the mesh has something
// to retry, eject and time out:
//   vars     FAIL_CODE=unavailable      every call of this instance fails with that code
//            DELAY_MS=300               every call waits this long before answering
//   metadata x-greeter-fail: <code>     this call fails with that code ...
//            x-greeter-fail-instance: <endpoint id>   ... but only on that instance
//            x-greeter-delay-ms: <ms>   this call waits this long first
// Codes are Connect's names: unavailable, resource_exhausted, internal, deadline_exceeded, ...
// A wait ends early when the call's deadline (grpc-timeout, connect-timeout-ms) passes. Every
// answer says in x-greeter-timeout-ms how much of its deadline the call had left when it arrived
// (none: no deadline), so a caller can see what its mesh propagated.
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { GreeterService, GreetingSchema, type Greeting } from "./gen/edgemesh/example/v1/greeter_pb.ts";

export interface GreeterInstance {
  /** "v1" or "v2": v2 greets differently, so a canary is visible in the answer. */
  version: string;
  /** The endpoint id the mesh knows this instance by. */
  instance: string;
  /** A Connect code name every call fails with; "" for none. */
  failCode: string;
  /** Added before every answer, ms. */
  delayMs: number;
}

const MAX_STREAM_COUNT = 100;
const MAX_INTERVAL_MS = 10_000;
const MAX_DELAY_MS = 60_000;

function codeNamed(name: string): Code {
  const code = Code[name.replace(/(^|_)([a-z])/g, (_, _sep: string, c: string) => c.toUpperCase()) as keyof typeof Code];
  if (typeof code !== "number") throw new ConnectError(`unknown failure code "${name}"; use a Connect code name such as "unavailable"`, Code.InvalidArgument);
  return code;
}

/** Waits `ms`, or until the call is cancelled or past its deadline (then throws as Connect expects). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(ConnectError.from(signal.reason));
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(ConnectError.from(signal.reason));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function requestedDelayMs(instance: GreeterInstance, headers: Headers): number {
  const asked = Number(headers.get("x-greeter-delay-ms") ?? 0);
  return Math.min(MAX_DELAY_MS, instance.delayMs + (Number.isFinite(asked) && asked > 0 ? asked : 0));
}

/** Throws the failure this call is told to have, if any. */
function misbehave(instance: GreeterInstance, headers: Headers): void {
  if (instance.failCode !== "") throw new ConnectError(`instance ${instance.instance} is set to fail`, codeNamed(instance.failCode));
  const asked = headers.get("x-greeter-fail");
  if (asked === null) return;
  const only = headers.get("x-greeter-fail-instance");
  if (only !== null && only !== instance.instance) return;
  throw new ConnectError(`failing as asked by x-greeter-fail`, codeNamed(asked));
}

function greeting(instance: GreeterInstance, name: string, index: number): Greeting {
  const who = name === "" ? "world" : name;
  return create(GreetingSchema, {
    text: instance.version === "v2" ? `Hi ${who}, from v2` : `Hello, ${who}!`,
    version: instance.version,
    instance: instance.instance,
    index,
    sentAtMs: Date.now(),
  });
}

/** Tells the caller what was left of the call's deadline when it arrived. */
function echoDeadline(context: HandlerContext): void {
  const left = context.timeoutMs();
  if (left !== undefined) context.responseHeader.set("x-greeter-timeout-ms", String(Math.round(left)));
}

export function greeterService(instance: GreeterInstance): ServiceImpl<typeof GreeterService> {
  return {
    async greet(request, context: HandlerContext) {
      echoDeadline(context);
      await pause(requestedDelayMs(instance, context.requestHeader), context.signal);
      misbehave(instance, context.requestHeader);
      return { greeting: greeting(instance, request.name, 0) };
    },
    async *greetStream(request, context: HandlerContext) {
      echoDeadline(context);
      const count = request.count === 0 ? 3 : request.count;
      if (count < 1 || count > MAX_STREAM_COUNT) throw new ConnectError(`count must be 1-${MAX_STREAM_COUNT}, got ${count}`, Code.InvalidArgument);
      if (request.intervalMs < 0 || request.intervalMs > MAX_INTERVAL_MS) throw new ConnectError(`interval_ms must be 0-${MAX_INTERVAL_MS}, got ${request.intervalMs}`, Code.InvalidArgument);
      await pause(requestedDelayMs(instance, context.requestHeader), context.signal);
      misbehave(instance, context.requestHeader);
      for (let index = 0; index < count; index++) {
        if (index > 0) await pause(request.intervalMs, context.signal);
        yield { greeting: greeting(instance, request.name, index) };
      }
    },
  };
}

export { GreeterService };
