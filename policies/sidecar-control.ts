// The contract between the control plane and the sidecars on the sidecars' non-public entrypoint:
// every sidecar Worker exports `SidecarControl` (a WorkerEntrypoint), and the control Worker binds
// each one as SIDECAR_<SERVICE> with `entrypoint = "SidecarControl"`. A named entrypoint is
// reachable only over a service binding, never from the internet, so the sidecar needs no
// credential for it. Types only: the sidecar implements them, durable/ and workers/control/ call them.

/** The sidecar's named entrypoint (the `entrypoint` of the control Worker's SIDECAR_<SERVICE> bindings). */
export const SIDECAR_CONTROL_ENTRYPOINT = "SidecarControl";

/** What one isolate of a sidecar shows about itself. */
export const SIDECAR_DEBUG_VIEWS = ["status", "snapshot", "outliers", "resilience", "telemetry", "security"] as const;
export type SidecarDebugView = (typeof SIDECAR_DEBUG_VIEWS)[number];

/** A health check of one of the sidecar's binding endpoints, run by the sidecar (the binding is its). */
export interface BindingProbe {
  /** The sidecar's service binding to the endpoint, e.g. REVIEWS_V1. */
  binding: string;
  /** GET this path. */
  path: string;
  timeoutMs: number;
}

/** Always an answer, so the control plane can tell an endpoint's status from trouble reaching the sidecar. */
export interface ProbeAnswer {
  status?: number;
  latencyMs: number;
  error?: string;
  timedOut?: boolean;
}

export interface SidecarControlRpc {
  /** Health-checks a binding endpoint of this sidecar. */
  probe(probe: BindingProbe): Promise<ProbeAnswer>;
  /** One debug view of the isolate that answers (plain JSON data). */
  debugView(view: SidecarDebugView): Promise<unknown>;
}
