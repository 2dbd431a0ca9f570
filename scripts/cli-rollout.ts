// `edgemesh rollout status|pause|resume|promote|abort <service>`: a service's staged rollout,
// through /v1/rollouts. The command group is built here and added to the CLI by scripts/cli.ts.
import type { Command } from "commander";

export interface RolloutCliDeps {
  api(method: string, pathname: string, init?: { body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  /** Prints the control plane's refusal and exits 1. */
  refuse(res: { status: number; body: any }): never;
  /** A time as "YYYY-MM-DD hh:mm:ssZ". */
  when(ms: number): string;
}

const percent = (rate: number | null | undefined) => (rate === null || rate === undefined ? "-" : `${(rate * 100).toFixed(2)}%`);
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/** One rollout as text: state, step, weights, gates, the last check against them. */
export function describeRollout(r: any, when: (ms: number) => string): string {
  const step = r.step >= 0 ? `step ${r.step + 1} of ${r.spec.weights.length} (${r.spec.weights.join(", ")})` : `0 of ${r.spec.weights.length} steps (${r.spec.weights.join(", ")})`;
  const g = r.spec.gates;
  const lines = [
    `${r.service}  ${r.state.toUpperCase()}  ${step}`,
    `  traffic: ${r.spec.canary} ${r.canaryWeight}%  ${r.spec.stable} ${r.stableWeight}%  on route${r.spec.routes.length > 1 ? "s" : ""} ${r.spec.routes.join(", ")}`,
    `  why: ${r.reason}`,
    `  gates per ${r.spec.intervalMs / 1000} s interval: success >= ${percent(g.minSuccessRate)}${g.maxP99Ms !== null ? `, p99 <= ${g.maxP99Ms} ms` : ""}, at least ${g.minRequests} requests; failed checks ${r.failedChecks} (${r.spec.maxFailedChecks} tolerated)`,
  ];
  const c = r.lastCheck;
  if (c) {
    const measured = c.measured
      ? `${Number(c.measured.requests).toFixed(0)} requests, success ${percent(c.measured.successRate)}, p99 ${c.measured.p99Ms === null ? "-" : `${Math.round(c.measured.p99Ms)} ms`}`
      : "nothing measured";
    lines.push(`  last check ${when(c.atMs)} over ${clock(c.window.fromMs)}-${clock(c.window.toMs)}: ${measured} -> ${c.verdict.toUpperCase()}${c.findings.length ? ` (${c.findings.join("; ")})` : ""}`);
  }
  if (r.nextCheckAtMs !== null) lines.push(`  next check ${when(r.nextCheckAtMs)}; progress deadline ${when(r.progressSinceMs + r.spec.progressDeadlineMs)} (then ${r.spec.onProgressDeadline})`);
  if (r.policyVersion !== null) lines.push(`  last policy version it wrote: v${r.policyVersion}`);
  return lines.join("\n");
}

/** Adds the group to `program`, whose settings (exit codes, error output) its commands inherit. */
export function addRolloutCommand(program: Command, deps: RolloutCliDeps): Command {
  const { api, refuse, when } = deps;
  const group = program
    .command("rollout")
    .description("staged rollouts: status, pause, resume, promote, abort")
    .addHelpText("after", `
A rollout is declared in a service's policy ("rollout": stable and canary subsets, steps, interval,
gates); the control plane runs it and writes a policy version per step. See docs/rollouts.md.`);

  group
    .command("status")
    .description("every rollout, or one service's: state, step, weights, the last check against the gates")
    .argument("[service]")
    .option("--json", "print the API's answer")
    .action(async (service: string | undefined, o: { json?: boolean }) => {
      const res = await api("GET", service ? `/v1/rollouts/${encodeURIComponent(service)}` : "/v1/rollouts");
      if (res.status !== 200) refuse(res);
      if (o.json) return console.log(JSON.stringify(res.body, null, 2));
      const list = service ? [res.body] : res.body.rollouts;
      if (list.length === 0) return console.log("no rollouts (declare one in a service's policy)");
      console.log(list.map((r: any) => describeRollout(r, when)).join("\n\n"));
    });

  const actions = [
    ["pause", "stop at the current weights; checks stop until resumed"],
    ["resume", "go on from where it was paused (or held), with a fresh window and deadline"],
    ["promote", "end now: the canary takes all traffic"],
    ["abort", "end now: all traffic goes back to the stable subset"],
  ] as const;
  for (const [action, description] of actions) {
    group
      .command(action)
      .description(description)
      .argument("<service>")
      .action(async (service: string) => {
        // Who acted is the name of the admin token (EDGEMESH_ADMIN_TOKEN), kept in the events and history.
        const res = await api("POST", `/v1/rollouts/${encodeURIComponent(service)}/${action}`);
        if (res.status !== 200) refuse(res);
        console.log(describeRollout(res.body.rollout, when));
      });
  }
  return group;
}
