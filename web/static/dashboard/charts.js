// charts.js: owns the tiny live charts: a sparkline of the last values of one measure, as an
// SVG line over its range, the newest value on the right.

import { svg } from "./dom.js";

const WIDTH = 160;
const HEIGHT = 40;

export function sparkline(values, label) {
  const finite = values.filter(Number.isFinite);
  const top = Math.max(...finite, 0);
  const bottom = Math.min(...finite, 0);
  const span = top - bottom || 1;
  const step = values.length > 1 ? WIDTH / (values.length - 1) : 0;
  const points = values
    .map((value, at) => (Number.isFinite(value) ? `${(at * step).toFixed(1)},${(HEIGHT - 2 - ((value - bottom) / span) * (HEIGHT - 4)).toFixed(1)}` : null))
    .filter((point) => point !== null)
    .join(" ");
  return svg("svg", { class: "sparkline", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img", "aria-label": label },
    svg("polyline", { points, "vector-effect": "non-scaling-stroke" }));
}
