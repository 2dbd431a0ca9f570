// Policy versions with author and message, a readable diff between any two, and rollback. A
// rollback sends If-Match with the version that was active when the operator asked for it, so it
// cannot overwrite a change made meanwhile: the control plane answers 409 and nothing changes.
import { ApiError } from "./api.ts";
import type { AppContext, Page } from "./context.ts";
import { fill, h, table } from "./dom.ts";
import { keepingFocus } from "./focus.ts";
import { compactJson, formatTime } from "./format.ts";
import type { DiffAnswer, HistoryAnswer, PolicyVersion } from "./types.ts";

const HISTORY_LIMIT = 100;

export function policyPage(ctx: AppContext): Page {
  let history: HistoryAnswer | null = null;
  let from: number | null = null;
  let to: number | null = null;
  let disposed = false;

  const heading = h("h1", { tabindex: -1 }, "Policy");
  const summary = h("p", { class: "intro" });
  const outcome = h("div", { class: "outcome", role: "alert" });
  const fromSelect = h("select", { id: "diff-from", "data-key": "diff-from" });
  const toSelect = h("select", { id: "diff-to", "data-key": "diff-to" });
  const diffRegion = h("div", { class: "diff", "aria-live": "polite" });
  const versionsRegion = h("section", { "aria-labelledby": "versions-title", class: "card" });
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-text" });

  const root = h(
    "section",
    { class: "page page-policy" },
    heading,
    summary,
    outcome,
    h(
      "section",
      { "aria-labelledby": "diff-title", class: "card" },
      h("h2", { id: "diff-title" }, "Compare two versions"),
      h("div", { class: "toolbar" }, h("label", { for: "diff-from" }, "From"), fromSelect, h("label", { for: "diff-to" }, "to"), toSelect),
      diffRegion,
    ),
    versionsRegion,
    dialog,
  );

  const versionOptions = (select: HTMLSelectElement, selected: number | null) => {
    fill(select, (history?.versions ?? []).map((v) => h("option", { value: v.version, selected: v.version === selected }, `v${v.version}${v.version === history?.activeVersion ? " (active)" : ""} — ${v.author}${v.message ? `: ${v.message}` : ""}`)));
  };

  const loadDiff = async () => {
    if (from === null || to === null) {
      fill(diffRegion, h("p", { class: "note" }, "Only one version so far: nothing to compare."));
      return;
    }
    if (from === to) {
      fill(diffRegion, h("p", { class: "note" }, `v${from} against itself: no changes.`));
      return;
    }
    try {
      const diff = await ctx.api.get<DiffAnswer>(`/v1/policy/diff?from=${from}&to=${to}`);
      if (!disposed) fill(diffRegion, diffTable(diff));
    } catch (err) {
      fill(diffRegion, h("p", { class: "error" }, `Could not compare: ${(err as Error).message}`));
    }
  };

  fromSelect.addEventListener("change", () => {
    from = Number(fromSelect.value);
    void loadDiff();
  });
  toSelect.addEventListener("change", () => {
    to = Number(toSelect.value);
    void loadDiff();
  });

  const loadHistory = async () => {
    try {
      history = await ctx.api.get<HistoryAnswer>(`/v1/policy/history?limit=${HISTORY_LIMIT}`);
    } catch (err) {
      fill(summary, h("span", { class: "error" }, `Could not read the history: ${(err as Error).message}`));
      return;
    }
    if (disposed) return;
    const versions = history.versions;
    const active = versions.find((v) => v.version === history!.activeVersion);
    fill(summary, active ? `Version ${active.version} is active: applied ${formatTime(active.appliedAtMs, Date.now())} UTC by ${active.author}${active.message ? ` (“${active.message}”)` : ""}.` : "No policy is active yet.");
    // Keep the operator's choice; the default compares the active version with the one before it.
    const known = (v: number | null) => v !== null && versions.some((x) => x.version === v);
    if (!known(to)) to = history.activeVersion ?? versions[0]?.version ?? null;
    if (!known(from)) from = versions.find((v) => v.version !== to)?.version ?? null;
    keepingFocus(root, () => {
      versionOptions(fromSelect, from);
      versionOptions(toSelect, to);
      fill(versionsRegion, h("h2", { id: "versions-title" }, "Versions"), versionsTable(history!, askRollback));
    });
    await loadDiff();
  };

  const askRollback = (target: PolicyVersion) => {
    // The version the operator sees as active now: the rollback is refused if it changes before they confirm.
    const expected = history?.activeVersion ?? null;
    const confirmButton = h("button", { type: "button", class: "danger", "data-action": "confirm-rollback" }, `Roll back to v${target.version}`);
    const cancelButton = h("button", { type: "button", "data-action": "cancel-rollback" }, "Cancel");
    fill(
      dialog,
      h("h2", { id: "confirm-title" }, `Roll back to version ${target.version}?`),
      h(
        "p",
        { id: "confirm-text" },
        `Version ${target.version}'s document (by ${target.author}${target.message ? `, “${target.message}”` : ""}) becomes a new version and every sidecar picks it up within its snapshot TTL. `,
        expected !== null ? `It is refused if the active version is no longer v${expected} when you confirm.` : "",
      ),
      h("div", { class: "dialog-buttons" }, cancelButton, confirmButton),
    );
    cancelButton.addEventListener("click", () => dialog.close());
    confirmButton.addEventListener("click", () => {
      dialog.close();
      void rollback(target.version, expected);
    });
    dialog.showModal();
    cancelButton.focus();
  };

  const rollback = async (version: number, expected: number | null) => {
    fill(outcome, h("p", { class: "pending" }, `Rolling back to v${version}…`));
    try {
      const result = await ctx.api.post<{ version: number; generation: number }>(`/v1/policy/rollback?to=${version}`, {
        headers: expected !== null ? { "if-match": `"${expected}"` } : {},
      });
      fill(outcome, h("p", { class: "success", "data-outcome": "rolled-back" }, `Rolled back: version ${result.version} is now active with v${version}'s document (generation ${result.generation}).`));
      ctx.announce(`Rolled back to version ${version}`);
    } catch (err) {
      fill(outcome, rollbackError(err, version, expected));
      // Show what changed behind the operator's back: the version they confirmed against to the one active now.
      if (err instanceof ApiError && err.status === 409 && typeof err.body.currentVersion === "number" && expected !== null) {
        from = expected;
        to = err.body.currentVersion;
      }
    }
    await loadHistory();
    heading.focus();
  };

  const offEvent = ctx.onEvent((e) => {
    if (e.type.startsWith("policy.")) void loadHistory();
  });
  void loadHistory();
  return {
    root,
    dispose() {
      disposed = true;
      offEvent();
      if (dialog.open) dialog.close();
    },
  };
}

function rollbackError(err: unknown, version: number, expected: number | null): HTMLElement {
  if (err instanceof ApiError && err.status === 409) {
    const current = err.body.currentVersion;
    return h(
      "div",
      { class: "conflict", "data-outcome": "conflict" },
      h("p", {}, h("strong", {}, "Not rolled back: the policy changed while you were deciding (409 Conflict).")),
      h("p", {}, `You confirmed against v${expected}, but v${String(current)} is active now. Nothing was changed. Look at what v${String(current)} changed below, then roll back again if you still want v${version}.`),
    );
  }
  if (err instanceof ApiError && err.status === 403) {
    return h("p", { class: "error", "data-outcome": "forbidden" }, `Not rolled back: this token may read but not change the policy (rollback needs a token with write scope). ${err.message}`);
  }
  return h("p", { class: "error", "data-outcome": "failed" }, `Not rolled back: ${(err as Error).message}`);
}

function versionsTable(history: HistoryAnswer, askRollback: (v: PolicyVersion) => void): HTMLElement {
  const nowMs = Date.now();
  const rows = history.versions.map((v) => {
    const active = v.version === history.activeVersion;
    const action = active
      ? h("span", { class: "badge active" }, "active")
      : h("button", { type: "button", "data-key": `rollback:${v.version}`, "data-rollback-to": v.version, onclick: () => askRollback(v) }, `Roll back to v${v.version}`);
    return [
      h("span", { class: "mono" }, `v${v.version}`),
      `${formatTime(v.appliedAtMs, nowMs)} UTC`,
      v.author,
      v.message || h("span", { class: "muted" }, "(no message)"),
      v.kind === "rollback" && v.restoredVersion !== null ? `rollback to v${v.restoredVersion}` : v.kind,
      action,
    ];
  });
  return table("Every version, newest first", ["Version", "Applied", "Author", "Message", "Kind", ""], rows, "No versions yet.", { "data-table": "versions" });
}

const PRETTY_FROM_CHARS = 60;
const PRETTY_MAX_LINES = 30;

/** A value of the diff: short ones on a line, larger objects indented, so a whole added route reads. */
function jsonValue(value: unknown, className: "before" | "after"): HTMLElement {
  const compact = JSON.stringify(value) ?? "";
  if (compact.length <= PRETTY_FROM_CHARS || typeof value !== "object" || value === null) return h("code", { class: className }, compactJson(value, 240));
  const lines = JSON.stringify(value, null, 2).split("\n");
  const shown = lines.length > PRETTY_MAX_LINES ? [...lines.slice(0, PRETTY_MAX_LINES), `… ${lines.length - PRETTY_MAX_LINES} more lines`] : lines;
  return h("pre", { class: className }, shown.join("\n"));
}

const OP_LABEL: Record<string, string> = { added: "+ added", removed: "− removed", changed: "~ changed" };

function diffTable(diff: DiffAnswer): HTMLElement {
  if (diff.changes.length === 0) return h("p", { class: "note" }, `v${diff.from} and v${diff.to} are the same document.`);
  const rows = diff.changes.map((c) => [
    h("code", {}, c.path),
    h("span", { class: `op op-${c.op}` }, OP_LABEL[c.op] ?? c.op),
    c.op === "added" ? h("span", { class: "muted" }, "—") : jsonValue(c.from, "before"),
    c.op === "removed" ? h("span", { class: "muted" }, "—") : jsonValue(c.to, "after"),
  ]);
  return table(`${diff.changes.length} change${diff.changes.length === 1 ? "" : "s"} from v${diff.from} to v${diff.to}`, ["Field (JSON path)", "Change", `In v${diff.from}`, `In v${diff.to}`], rows, "", { "data-table": "diff" });
}
