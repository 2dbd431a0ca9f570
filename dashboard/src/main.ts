// The dashboard's entry: sign-in, the header, the router between pages, and the watch stream that
// feeds every page live. Pages: #/topology, #/service/<name>, #/policy, #/events.
import { Api, ApiError } from "./api.ts";
import type { AppContext, Page } from "./context.ts";
import { fill, h } from "./dom.ts";
import { eventsPage } from "./page-events.ts";
import { policyPage } from "./page-policy.ts";
import { servicePage } from "./page-service.ts";
import { topologyPage } from "./page-topology.ts";
import { WINDOWS, windowOf, type TimeWindow } from "./series.ts";
import type { MeshEvent, SessionInfo } from "./types.ts";
import { Watch, type WatchState } from "./watch.ts";

/** Events the feed keeps in memory. */
const MAX_EVENTS = 2000;
/** How far back the event log starts when the dashboard opens. */
const INITIAL_EVENTS = 300;
const WINDOW_KEY = "edgemesh.window";

const api = new Api();
const main = document.getElementById("main")!;
const nav = document.getElementById("nav")!;
const controls = document.getElementById("controls")!;
const meshName = document.getElementById("mesh-name")!;
const live = document.getElementById("live-region")!;

let page: Page | null = null;
let watch: Watch | null = null;
let context: AppContext | null = null;

function announce(message: string): void {
  fill(live, message);
}

function showSignIn(message = ""): void {
  page?.dispose();
  page = null;
  watch?.stop();
  watch = null;
  context = null;
  nav.hidden = true;
  controls.hidden = true;
  fill(meshName, "");
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "token-help" });
  const error = h("p", { class: "error", role: "alert", id: "signin-error" }, message);
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", tabindex: -1 }, "Sign in to edgemesh"),
    h("label", { for: "token" }, "Admin token"),
    input,
    h(
      "p",
      { id: "token-help", class: "note" },
      "The dashboard sends it to this control plane's admin API in a header and keeps it in this tab only. A read-only token shows everything; rolling back a policy needs a token that may write. ",
      "Running the mesh locally with npm start? Its banner shows the token.",
    ),
    button,
    error,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    button.disabled = true;
    fill(error, "");
    api
      .signIn(input.value.trim())
      .then((session) => start(session))
      .catch((err: unknown) => {
        button.disabled = false;
        fill(error, err instanceof ApiError && err.status === 401 ? "That token was refused. Check it and try again." : `Could not sign in: ${(err as Error).message}`);
        input.focus();
      });
  });
  fill(main, form);
  input.focus();
}

function start(session: SessionInfo): void {
  const listeners = new Set<(e: MeshEvent) => void>();
  const windowListeners = new Set<(w: TimeWindow) => void>();
  const events: MeshEvent[] = [];
  let timeWindow = windowOf(sessionStorage.getItem(WINDOW_KEY));

  context = {
    api,
    session,
    window: () => timeWindow,
    events: () => events,
    onEvent: (l) => (listeners.add(l), () => listeners.delete(l)),
    onWindowChange: (l) => (windowListeners.add(l), () => windowListeners.delete(l)),
    announce,
  };

  fill(meshName, `mesh ${session.mesh}`);
  nav.hidden = false;
  controls.hidden = false;
  const select = document.getElementById("window") as HTMLSelectElement;
  fill(select, WINDOWS.map((w) => h("option", { value: w.text, selected: w.text === timeWindow.text }, w.label)));
  select.onchange = () => {
    timeWindow = windowOf(select.value);
    sessionStorage.setItem(WINDOW_KEY, timeWindow.text);
    windowListeners.forEach((l) => l(timeWindow));
  };
  document.getElementById("signout")!.onclick = () => {
    api.signOut();
    showSignIn("Signed out.");
  };

  const stateText: Record<WatchState, string> = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", stopped: "stopped" };
  const indicator = document.getElementById("watch-state")!;
  watch = new Watch(api, {
    event: (e) => {
      events.push(e);
      if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
      listeners.forEach((l) => l(e));
    },
    state: (state, detail) => {
      indicator.className = `watch watch-${state}`;
      indicator.title = detail;
      fill(indicator, stateText[state]);
    },
    gap: () => announce("Some events were pruned before they could be shown."),
  });
  api
    .get<{ latestSeq: number }>("/v1/events?limit=1")
    .then((log) => watch?.start(Math.max(0, log.latestSeq - INITIAL_EVENTS)))
    .catch(() => watch?.start(0));

  route();
}

function route(): void {
  if (!context) return;
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [name, arg] = hash.split("/");
  page?.dispose();
  if (name === "service" && arg) page = servicePage(context, arg);
  else if (name === "policy") page = policyPage(context);
  else if (name === "events") page = eventsPage(context);
  else page = topologyPage(context);
  const current = name === "service" ? "topology" : name || "topology";
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("data-page") === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  fill(main, page.root);
  document.title = `${name === "service" && arg ? arg : current[0]!.toUpperCase() + current.slice(1)} · edgemesh`;
  // Move focus to the new page's heading, as a page load would, so keyboard and screen reader
  // users start there.
  page.root.querySelector<HTMLElement>("h1")?.focus();
}

window.addEventListener("hashchange", route);
api.onUnauthorized = (message) => {
  api.signOut();
  showSignIn(`Signed out: the control plane no longer accepts this token (${message}).`);
};

if (api.signedIn) {
  // A token kept in this tab from before a reload: check it before showing anything.
  api
    .get<SessionInfo>("/v1/dashboard/session")
    .then(start)
    .catch((err: unknown) => {
      if (!(err instanceof ApiError && err.status === 401)) showSignIn(`Could not reach the control plane: ${(err as Error).message}`);
    });
} else {
  showSignIn();
}
