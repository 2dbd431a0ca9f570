// Who is calling. Over a Worker service binding the only trustworthy source is the binding's own
// configuration: `props = { caller = "productpage" }` on the caller's binding to this sidecar,
// which the deployment sets and the calling code cannot change; it arrives as `ctx.props`.
// Anything else (the internet, a workers.dev URL, a binding without props) is `external`.
// Headers are never read here: a caller could set any header it likes.
import { EXTERNAL_CALLER } from "../../analytics/request-layout.ts";

/** Caller names longer than this are misconfigured; they are cut, not trusted to be small. */
const MAX_CALLER_LENGTH = 63;

export function callerOf(props: unknown): string {
  if (props === null || typeof props !== "object") return EXTERNAL_CALLER;
  const caller = (props as { caller?: unknown }).caller;
  if (typeof caller !== "string" || caller === "") return EXTERNAL_CALLER;
  return caller.length > MAX_CALLER_LENGTH ? caller.slice(0, MAX_CALLER_LENGTH) : caller;
}
