// The service page's rollout panel: state and step, the weights on the shaped routes, the steps,
// the last check's measurements against the gates, and pause / resume / promote / abort, each
// after a confirmation dialog (Cancel has focus; Escape cancels). The action goes to
// POST /v1/rollouts/<service>/<action>; the control plane names the signed-in token as who did it.
import type { RolloutAction, RolloutStatus } from "../../policies/rollout-run.ts";
import { ApiError } from "./api.ts";
import type { AppContext } from "./context.ts";
import { fill, h, table } from "./dom.ts";
import { keepingFocus } from "./focus.ts";
import { formatCount, formatDuration, formatTime } from "./format.ts";
import {
  ACTION_LABEL, actionConsequence, gateRows, rolloutActions, STATE_LABEL, STATE_MARK, stepText, VERDICT_LABEL,
} from "./rollout-text.ts";

export interface RolloutPanel {
  root: HTMLElement;
  /** Draws the rollout (null: the service declares none; a string: it could not be read). */
  update(rollout: RolloutStatus | null | string): void;
  dispose(): void;
}

export function rolloutPanel(ctx: AppContext, service: string, changed: () => void): RolloutPanel {
  const content = h("div", {});
  const outcome = h("div", { class: "outcome", role: "alert" });
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": "rollout-confirm-title", "aria-describedby": "rollout-confirm-text" });
  const root = h("section", { "aria-labelledby": "rollout-title", class: "card rollout", "data-panel": "rollout", hidden: true }, content, outcome, dialog);
  let current: RolloutStatus | null = null;

  const ask = (action: RolloutAction) => {
    if (!current) return;
    const r = current;
    const confirmButton = h("button", { type: "button", class: action === "abort" ? "danger" : "", "data-action": `confirm-${action}` }, `${ACTION_LABEL[action]}`);
    const cancelButton = h("button", { type: "button", "data-action": "cancel-rollout-action" }, "Cancel");
    fill(
      dialog,
      h("h2", { id: "rollout-confirm-title" }, `${ACTION_LABEL[action]}: the rollout of ${service}?`),
      h("p", { id: "rollout-confirm-text" }, actionConsequence(action, r)),
      h("div", { class: "dialog-buttons" }, cancelButton, confirmButton),
    );
    cancelButton.addEventListener("click", () => dialog.close());
    confirmButton.addEventListener("click", () => {
      dialog.close();
      void perform(action);
    });
    dialog.showModal();
    cancelButton.focus();
  };

  const perform = async (action: RolloutAction) => {
    fill(outcome, h("p", { class: "pending" }, `${ACTION_LABEL[action]}…`));
    try {
      const result = await ctx.api.post<{ rollout: RolloutStatus }>(`/v1/rollouts/${encodeURIComponent(service)}/${action}`);
      fill(outcome, h("p", { class: "success", "data-outcome": `rollout-${action}` }, `Done: the rollout is ${STATE_LABEL[result.rollout.state].toLowerCase()}. ${result.rollout.reason}.`));
      ctx.announce(`Rollout of ${service}: ${STATE_LABEL[result.rollout.state]}`);
      update(result.rollout);
    } catch (err) {
      const message = err instanceof ApiError && err.status === 403
        ? "this token may read but not act on rollouts (that needs a token with write scope)"
        : err instanceof ApiError && err.status === 409
          ? `the rollout is no longer where you saw it: ${err.message}`
          : (err as Error).message;
      fill(outcome, h("p", { class: "error", "data-outcome": "rollout-refused" }, `Not done: ${message}`));
    }
    changed();
  };

  const update = (rollout: RolloutStatus | null | string) => {
    if (rollout === null) {
      current = null;
      root.hidden = true;
      return;
    }
    root.hidden = false;
    if (typeof rollout === "string") {
      fill(content, h("h2", { id: "rollout-title" }, "Rollout"), h("p", { class: "error" }, `Rollout unavailable: ${rollout}`));
      return;
    }
    current = rollout;
    keepingFocus(content, () => fill(content, ...draw(rollout, ask)));
  };

  return {
    root,
    update,
    dispose() {
      if (dialog.open) dialog.close();
    },
  };
}

function draw(r: RolloutStatus, ask: (a: RolloutAction) => void): (Node | string | null)[] {
  const nowMs = Date.now();
  const { spec } = r;
  const out: (Node | string | null)[] = [
    h("h2", { id: "rollout-title" }, `Rollout: ${spec.stable} → ${spec.canary}`),
    h(
      "p",
      { class: "rollout-state" },
      h("span", { class: `badge rollout-${r.state}`, "data-rollout-state": r.state }, `${STATE_MARK[r.state]} ${STATE_LABEL[r.state]}`),
      ` ${stepText(r)}. `,
      // The reason of a progressing run starts with the step, already said.
      h("span", { "data-rollout-reason": "" }, r.reason.replace(/^step \d+ of \d+: /, "")),
    ),
  ];
  out.push(
    h(
      "div",
      { class: "split rollout-weights", "data-rollout-weights": "" },
      [[spec.canary, r.canaryWeight], [spec.stable, r.stableWeight]].map(([subset, weight]) =>
        h("div", { class: "split-row" }, h("span", { class: "split-name" }, String(subset)), h("meter", { min: 0, max: 100, value: Number(weight), "aria-label": `${subset} weight` }), h("span", { class: "split-pct", "data-subset": String(subset) }, `${weight}%`)),
      ),
    ),
    h(
      "ol",
      { class: "rollout-steps", "aria-label": "Steps: the canary's share of traffic" },
      spec.weights.map((w, i) => h("li", { class: i === r.step ? "current" : i < r.step ? "done" : "", "aria-current": i === r.step ? "step" : null }, `${w}%`)),
    ),
    h("p", { class: "note" }, `On route${spec.routes.length === 1 ? "" : "s"} ${spec.routes.join(", ")}${spec.audience ? ", with a test audience that sees the canary throughout" : ""}. Checked every ${formatDuration(spec.intervalMs)}; ${r.failedChecks} failed check${r.failedChecks === 1 ? "" : "s"}, ${spec.maxFailedChecks} tolerated.`),
  );
  const check = r.lastCheck;
  out.push(
    table(
      check ? `The last check, at ${formatTime(check.atMs, nowMs)} UTC over ${formatTime(check.window.fromMs, nowMs)}–${formatTime(check.window.toMs, nowMs)}: ${VERDICT_LABEL[check.verdict]}` : "No check yet",
      ["Gate", "Required", "Measured", "Met"],
      gateRows(r).map((g) => [g.gate, g.required, g.measured, g.met === null ? h("span", { class: "muted" }, "–") : h("span", { class: g.met ? "ok" : "bad" }, g.met ? "✓ yes" : "✕ no")]),
      "",
      { "data-table": "rollout-gates" },
    ),
  );
  if (check?.findings.length) out.push(h("p", { class: check.verdict === "fail" ? "error" : "note" }, check.findings.join("; ")));
  if (r.nextCheckAtMs !== null) {
    const deadline = r.progressSinceMs + spec.progressDeadlineMs;
    out.push(h("p", { class: "note" }, `Next check in ${formatDuration(r.nextCheckAtMs - nowMs)}. Without a passed check by ${formatTime(deadline, nowMs)} UTC it will ${spec.onProgressDeadline === "fail" ? "fail and send traffic back to the stable subset" : "hold where it is"}.`));
  }
  if (r.policyVersion !== null) out.push(h("p", { class: "note" }, `It last wrote policy version ${formatCount(r.policyVersion)}.`));
  const actions = rolloutActions(r.state);
  if (actions.length > 0) {
    out.push(
      h(
        "div",
        { class: "toolbar rollout-actions" },
        actions.map((a) => h("button", { type: "button", class: a === "abort" ? "danger" : "", "data-key": `rollout-${a}`, "data-rollout-action": a, onclick: () => ask(a) }, ACTION_LABEL[a])),
      ),
    );
  }
  return out;
}
