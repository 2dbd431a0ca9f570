// What every page gets: the API, the session, the chosen time window and the live event feed.
import type { Api } from "./api.ts";
import type { TimeWindow } from "./series.ts";
import type { MeshEvent, SessionInfo } from "./types.ts";

export interface AppContext {
  api: Api;
  session: SessionInfo;
  window(): TimeWindow;
  /** Events seen so far, oldest first (at most MAX_EVENTS). */
  events(): readonly MeshEvent[];
  /** Each subscription returns its unsubscribe. */
  onEvent(listener: (e: MeshEvent) => void): () => void;
  onWindowChange(listener: (w: TimeWindow) => void): () => void;
  /** Something the page wants said to screen reader users (an aria-live region). */
  announce(message: string): void;
}

export interface Page {
  root: HTMLElement;
  dispose(): void;
}

/** Events that change what the topology and service pages draw. */
export const STRUCTURE_EVENTS = new Set([
  "policy.applied", "policy.rolled-back", "policy.load-failed", "endpoint.registered", "endpoint.deregistered", "endpoint.expired", "health.changed",
]);
