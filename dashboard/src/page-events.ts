// The live event log (policy, registry, health, snapshots served), newest first, filterable by
// kind and by service. It reads the app's event feed, which the watch stream fills.
import type { AppContext, Page } from "./context.ts";
import { fill, h, table } from "./dom.ts";
import { EVENT_GROUPS, eventMatches, eventService, eventSummary, type EventGroup } from "./event-text.ts";
import { formatTime } from "./format.ts";

/** Rows drawn at most; the feed keeps more. */
const SHOWN = 300;
const FILTER_KEY = "edgemesh.eventFilter";

interface StoredFilter {
  groups: EventGroup[];
  service: string;
}

function storedFilter(): StoredFilter {
  try {
    const raw = JSON.parse(sessionStorage.getItem(FILTER_KEY) ?? "null") as StoredFilter | null;
    if (raw && Array.isArray(raw.groups) && typeof raw.service === "string") return raw;
  } catch {
    // Fall through to the default.
  }
  // Snapshot deliveries are many and routine: off until asked for.
  return { groups: ["policy", "registry", "health", "rollout"], service: "" };
}

export function eventsPage(ctx: AppContext): Page {
  const filter = storedFilter();
  const groups = new Set<EventGroup>(filter.groups);
  let service = filter.service;

  const heading = h("h1", { tabindex: -1 }, "Events");
  const count = h("p", { class: "intro", "aria-live": "polite" });
  const serviceSelect = h("select", { id: "event-service" });
  const listRegion = h("div", { class: "events" });
  const checkboxes = EVENT_GROUPS.map((g) => {
    const box = h("input", { type: "checkbox", id: `group-${g.group}`, value: g.group, checked: groups.has(g.group) });
    box.addEventListener("change", () => {
      if (box.checked) groups.add(g.group);
      else groups.delete(g.group);
      changed();
    });
    return h("span", { class: "check" }, box, h("label", { for: `group-${g.group}` }, g.label));
  });
  serviceSelect.addEventListener("change", () => {
    service = serviceSelect.value;
    changed();
  });

  const root = h(
    "section",
    { class: "page page-events" },
    heading,
    count,
    h(
      "form",
      { class: "filters", "aria-label": "Filter events", onsubmit: (e: Event) => e.preventDefault() },
      h("fieldset", {}, h("legend", {}, "Kinds"), checkboxes),
      h("div", { class: "field" }, h("label", { for: "event-service" }, "Service"), serviceSelect),
    ),
    listRegion,
  );

  const serviceOptions = () => {
    const seen = new Set<string>();
    for (const e of ctx.events()) {
      const s = eventService(e);
      if (s) seen.add(s);
    }
    if (service) seen.add(service);
    const names = [...seen].sort();
    const current = [...serviceSelect.options].map((o) => o.value).join(",");
    if (current === ["", ...names].join(",")) return;
    fill(serviceSelect, h("option", { value: "" }, "All services"), names.map((n) => h("option", { value: n, selected: n === service }, n)));
  };

  let scheduled = false;
  const render = () => {
    scheduled = false;
    serviceOptions();
    const all = ctx.events();
    const shown = all.filter((e) => eventMatches(e, { groups, service })).slice(-SHOWN).reverse();
    fill(count, `${shown.length} of ${all.length} events shown, newest first; new ones appear as they happen.`);
    const nowMs = Date.now();
    fill(
      listRegion,
      table(
        "Mesh events",
        ["Time (UTC)", "Seq", "Kind", "Service", "What happened"],
        shown.map((e) => [formatTime(e.atMs, nowMs), String(e.seq), h("span", { class: `kind kind-${e.type.split(".")[0]}` }, e.type), eventService(e) ?? "", eventSummary(e)]),
        "No events match these filters yet.",
        { "data-table": "events" },
      ),
    );
  };
  // Many events can arrive at once (a replay): draw once per frame.
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(render);
  };
  const changed = () => {
    sessionStorage.setItem(FILTER_KEY, JSON.stringify({ groups: [...groups], service } satisfies StoredFilter));
    render();
  };

  const offEvent = ctx.onEvent(schedule);
  render();
  return { root, dispose: offEvent };
}
