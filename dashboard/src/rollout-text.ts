// What the service page's rollout panel says: the state in words, the gates against what the last
// check measured, and which actions a state allows. Pure: unit-tested without a browser. The
// shapes are the answer of GET /v1/rollouts/<service>, defined with the run (policies/rollout-run.ts).
import type { RolloutAction, RolloutCheck, RolloutState, RolloutStatus } from "../../policies/rollout-run.ts";
import { formatCount, formatMs, formatPercent } from "./format.ts";

export const STATE_LABEL: Record<RolloutState, string> = {
  pending: "Pending",
  progressing: "Progressing",
  paused: "Paused",
  promoted: "Promoted",
  "rolled-back": "Rolled back",
  failed: "Failed",
};

/** A symbol per state, so colour is never the only cue. */
export const STATE_MARK: Record<RolloutState, string> = {
  pending: "…",
  progressing: "▶",
  paused: "Ⅱ",
  promoted: "✓",
  "rolled-back": "↩",
  failed: "✕",
};

export function stepText(r: RolloutStatus): string {
  const steps = r.spec.weights.length;
  return r.step < 0 ? `not started (${steps} steps)` : `step ${r.step + 1} of ${steps}`;
}

/** The actions an operator may take in a state, in the order the panel shows them. */
export function rolloutActions(state: RolloutState): RolloutAction[] {
  if (state === "pending" || state === "progressing") return ["pause", "promote", "abort"];
  if (state === "paused") return ["resume", "promote", "abort"];
  return [];
}

export const ACTION_LABEL: Record<RolloutAction, string> = { pause: "Pause", resume: "Resume", promote: "Promote now", abort: "Abort" };

/** What confirming an action will do, for the dialog. */
export function actionConsequence(action: RolloutAction, r: RolloutStatus): string {
  switch (action) {
    case "pause":
      return `The rollout stops at ${r.canaryWeight}% for "${r.spec.canary}" and checks stop until it is resumed.`;
    case "resume":
      return `The rollout goes on from ${stepText(r)} with a fresh interval and a fresh progress deadline.`;
    case "promote":
      return `"${r.spec.canary}" takes all traffic on ${r.spec.routes.join(", ")} now, without the remaining checks. A new policy version is written.`;
    case "abort":
      return `All traffic goes back to "${r.spec.stable}" now and the rollout ends. A new policy version is written.`;
  }
}

export interface GateRow {
  gate: string;
  required: string;
  measured: string;
  /** null when the check could not judge this gate. */
  met: boolean | null;
}

/** Each gate with what the last check measured against it. */
export function gateRows(r: RolloutStatus): GateRow[] {
  const g = r.spec.gates;
  const m = r.lastCheck?.measured ?? null;
  const enough = m !== null && m.requests >= g.minRequests;
  const rows: GateRow[] = [
    { gate: "Requests in the interval", required: `≥ ${formatCount(g.minRequests)}`, measured: m ? formatCount(m.requests) : "–", met: m ? enough : null },
    {
      gate: "Success rate",
      required: `≥ ${formatPercent(g.minSuccessRate)}`,
      measured: m ? formatPercent(m.successRate) : "–",
      met: enough && m.successRate !== null ? m.successRate >= g.minSuccessRate : null,
    },
  ];
  if (g.maxP99Ms !== null) {
    rows.push({ gate: "p99 latency", required: `≤ ${formatMs(g.maxP99Ms)}`, measured: m ? formatMs(m.p99Ms) : "–", met: enough && m.p99Ms !== null ? m.p99Ms <= g.maxP99Ms : null });
  }
  return rows;
}

export const VERDICT_LABEL: Record<RolloutCheck["verdict"], string> = { pass: "passed", fail: "failed", insufficient: "could not judge" };
