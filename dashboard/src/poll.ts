// Runs a refresh now and then every few seconds, one at a time, and not while the tab is hidden.

export const POLL_EVERY_MS = 5000;

export class Poller {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private readonly onVisible = () => {
    if (!document.hidden) this.now();
  };

  constructor(
    private readonly refresh: () => Promise<void>,
    private readonly everyMs = POLL_EVERY_MS,
  ) {
    document.addEventListener("visibilitychange", this.onVisible);
    this.now();
  }

  /** Refreshes at once (or right after the refresh under way). */
  now(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = true;
    this.refresh()
      .catch(() => {})
      .finally(() => {
        this.running = false;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.now();
        } else if (!document.hidden) {
          this.timer = setTimeout(() => this.now(), this.everyMs);
        }
      });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisible);
  }
}
