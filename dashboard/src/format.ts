// How numbers read on the dashboard. Pure: unit-tested without a browser.

/** Requests per second: "0", "0.02/s", "3.4/s", "120/s", "1.2k/s". */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return "0/s";
  if (perSecond >= 1000) return `${(perSecond / 1000).toFixed(1)}k/s`;
  if (perSecond >= 100) return `${Math.round(perSecond)}/s`;
  if (perSecond >= 10) return `${perSecond.toFixed(1)}/s`;
  if (perSecond >= 0.01) return `${perSecond.toFixed(2)}/s`;
  return "<0.01/s";
}

/** A share as a percentage; "–" when there is none (no requests). 99.95% never reads as 100%. */
export function formatPercent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  const percent = ratio * 100;
  if (percent >= 100) return "100%";
  if (percent >= 99) return `${(Math.floor(percent * 10) / 10).toFixed(1)}%`;
  return `${Math.floor(percent)}%`;
}

/** Latency: "0 ms", "94 ms", "1.2 s", "2 min". */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** A duration in the past or future, coarse: "3 s", "5 min", "2 h", "4 d". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86_400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** A count: "12", "1,234". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** A time of day in UTC with seconds, and the date when it is not today. */
export function formatTime(atMs: number, nowMs: number): string {
  const at = new Date(atMs);
  const time = at.toISOString().slice(11, 19);
  const sameDay = at.toISOString().slice(0, 10) === new Date(nowMs).toISOString().slice(0, 10);
  return sameDay ? time : `${at.toISOString().slice(0, 10)} ${time}`;
}

/** The three numbers every edge and node label shows. */
export function metricsLine(m: { requestsPerSecond: number; successRate: number | null; latencyMs: { p99: number } } | undefined): string {
  if (!m) return "no traffic";
  return `${formatRate(m.requestsPerSecond)} · ${formatPercent(m.successRate)} · p99 ${formatMs(m.latencyMs.p99)}`;
}

/** A JSON value on one line, cut to `max` characters. */
export function compactJson(value: unknown, max = 160): string {
  const text = value === undefined ? "(none)" : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
