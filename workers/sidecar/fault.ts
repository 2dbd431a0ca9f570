// Fault injection: delay and abort a share of tries, optionally only for requests carrying a given
// header. Decided per try, so a route keeps its retries and timeouts (unless `bypassRetries`).
import type { CompiledFault } from "../../policies/snapshot.ts";

export interface FaultDecision {
  /** Added before the try is sent; 0 for none. */
  delayMs: number;
  /** Status to answer with instead of the upstream; 0 for none. */
  abortStatus: number;
}

export const NO_FAULT: FaultDecision = Object.freeze({ delayMs: 0, abortStatus: 0 });

/** Whether the request is targeted at all (the header condition). */
export function faultApplies(fault: CompiledFault, headers: Headers): boolean {
  if (fault.headerName === "") return true;
  const value = headers.get(fault.headerName);
  if (value === null) return false;
  return fault.headerValue === undefined || value === fault.headerValue;
}

/** Rolls the dice for one try; `random` gives independent numbers in [0, 1). */
export function decideFault(fault: CompiledFault, random: () => number): FaultDecision {
  const delayMs = fault.delayPercent > 0 && random() * 100 < fault.delayPercent ? fault.delayMs : 0;
  const abortStatus = fault.abortPercent > 0 && random() * 100 < fault.abortPercent ? fault.abortStatus : 0;
  if (delayMs === 0 && abortStatus === 0) return NO_FAULT;
  return { delayMs, abortStatus };
}

/** The response an aborted try answers with; marked so nobody mistakes it for the upstream's. */
export function faultResponse(status: number): Response {
  return new Response(`fault injected: ${status}\n`, {
    status,
    headers: { "content-type": "text/plain", "x-edgemesh-fault": "abort", "x-edgemesh-generated": "1" },
  });
}
