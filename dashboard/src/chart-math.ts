// The geometry of the small line charts. Pure.

/** A round upper bound for a chart's axis: 1, 2, 5, 10, 20, 50, … times a power of ten. */
export function niceMax(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (value <= m * power) return m * power;
  return 10 * power;
}

/**
 * An SVG path through the values, spread evenly over `width`, 0 at the bottom and `max` at the
 * top. A null (no data) breaks the line rather than drawing it down to zero.
 */
export function linePath(values: (number | null)[], width: number, height: number, max: number): string {
  if (values.length === 0) return "";
  const dx = values.length > 1 ? width / (values.length - 1) : 0;
  const parts: string[] = [];
  let drawing = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      drawing = false;
      return;
    }
    const x = Math.round(i * dx * 10) / 10;
    const y = Math.round((height - (Math.min(v, max) / max) * height) * 10) / 10;
    parts.push(`${drawing ? "L" : "M"}${x},${y}`);
    drawing = true;
  });
  return parts.join(" ");
}
