// Small SVG line charts for the service page.
import { linePath, niceMax } from "./chart-math.ts";
import { h, s } from "./dom.ts";

const WIDTH = 300;
const HEIGHT = 72;

export interface ChartLine {
  name: string;
  values: (number | null)[];
  /** A class of styles.css: the line's colour. */
  className: string;
}

/**
 * A chart with one or more lines over the same buckets. `max` fixes the axis (e.g. 1 for a
 * share); otherwise it is rounded up from the data.
 */
export function lineChart(opts: { title: string; lines: ChartLine[]; format: (v: number) => string; max?: number; current: string; spanLabel: string }): HTMLElement {
  const all = opts.lines.flatMap((l) => l.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const max = opts.max ?? niceMax(Math.max(0, ...all));
  const points = opts.lines[0]?.values.length ?? 0;
  const dx = points > 1 ? WIDTH / (points - 1) : 0;
  const drawn = opts.lines.map((line) => {
    // A lone point between gaps draws no segment: show it as a dot.
    const dots = line.values.flatMap((v, i) => {
      const lone = v !== null && (line.values[i - 1] ?? null) === null && (line.values[i + 1] ?? null) === null;
      return lone ? [s("circle", { cx: i * dx, cy: HEIGHT - (Math.min(v!, max) / max) * HEIGHT, r: 2, class: `dot ${line.className}` })] : [];
    });
    return s("g", {}, s("path", { d: linePath(line.values, WIDTH, HEIGHT, max), class: `chart-line ${line.className}` }), dots);
  });
  const summary = `${opts.title}, ${opts.spanLabel}: now ${opts.current}; axis up to ${opts.format(max)}.`;
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, h("span", { class: "chart-title" }, opts.title), h("span", { class: "chart-current" }, `now ${opts.current}`)),
    s(
      "svg",
      { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img", "aria-label": summary, class: "chart-svg" },
      s("line", { x1: 0, y1: HEIGHT, x2: WIDTH, y2: HEIGHT, class: "chart-axis" }),
      s("line", { x1: 0, y1: 0.5, x2: WIDTH, y2: 0.5, class: "chart-grid" }),
      drawn,
    ),
    h(
      "div",
      { class: "chart-scale" },
      h("span", {}, `max ${opts.format(max)}`),
      opts.lines.length > 1 ? h("span", { class: "chart-keys" }, opts.lines.map((l) => h("span", { class: `key ${l.className}` }, l.name))) : null,
      h("span", {}, opts.spanLabel),
    ),
  );
}
