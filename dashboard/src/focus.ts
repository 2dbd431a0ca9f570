// Re-rendering keeps the keyboard user's place: an element with data-key that had focus before a
// region is redrawn gets it back afterwards.

export function keepingFocus(region: Element, redraw: () => void): void {
  const active = document.activeElement;
  const key = active instanceof Element && region.contains(active) ? active.getAttribute("data-key") : null;
  redraw();
  if (key === null) return;
  const again = [...region.querySelectorAll("[data-key]")].find((el) => el.getAttribute("data-key") === key);
  if (again instanceof HTMLElement || again instanceof SVGElement) again.focus();
}
