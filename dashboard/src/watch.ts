// The live event stream. Each (re)connect first asks GET /v1/dashboard/session with the token,
// which sets a short-lived watch ticket cookie, then opens the WebSocket, which the browser sends
// that cookie with. Reconnects resume after the last sequence seen, so no event is missed.
import type { Api } from "./api.ts";
import type { MeshEvent, SessionInfo, WatchHello } from "./types.ts";

export type WatchState = "connecting" | "live" | "reconnecting" | "stopped";

const PING_EVERY_MS = 25_000;
const MAX_BACKOFF_MS = 15_000;

export class Watch {
  private socket: WebSocket | null = null;
  private stopped = true;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  lastSeq = 0;

  constructor(
    private readonly api: Api,
    private readonly handlers: {
      event: (e: MeshEvent) => void;
      state: (state: WatchState, detail: string) => void;
      /** Events the client needed were pruned: its views should reload. */
      gap: () => void;
    },
  ) {}

  start(since: number): void {
    this.stopped = false;
    this.lastSeq = since;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.socket?.close(1000, "signed out");
    this.socket = null;
    this.handlers.state("stopped", "");
  }

  private async connect(): Promise<void> {
    this.handlers.state(this.failures === 0 ? "connecting" : "reconnecting", "");
    let session: SessionInfo;
    try {
      session = await this.api.get<SessionInfo>("/v1/dashboard/session");
    } catch (err) {
      this.retry(`could not get a watch ticket: ${(err as Error).message}`);
      return;
    }
    if (this.stopped) return;
    const url = new URL(session.watchPath, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("since", String(this.lastSeq));
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("message", (m) => this.receive(m.data));
    socket.addEventListener("close", () => {
      clearInterval(this.pingTimer);
      if (this.socket === socket) this.retry("the stream closed");
    });
    socket.addEventListener("open", () => {
      this.pingTimer = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send("ping"), PING_EVERY_MS);
    });
  }

  private receive(data: unknown): void {
    if (typeof data !== "string") return;
    let message: { type?: string; seq?: number };
    try {
      message = JSON.parse(data) as { type?: string; seq?: number };
    } catch {
      return;
    }
    if (message.type === "watch.hello") {
      this.failures = 0;
      this.handlers.state("live", "");
      if ((message as WatchHello).gap) this.handlers.gap();
      return;
    }
    if (typeof message.seq !== "number" || message.seq <= this.lastSeq) return;
    this.lastSeq = message.seq;
    this.handlers.event(message as MeshEvent);
  }

  private retry(detail: string): void {
    if (this.stopped) return;
    this.socket = null;
    this.failures++;
    const delayMs = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.failures - 1, 5));
    this.handlers.state("reconnecting", detail);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }
}
