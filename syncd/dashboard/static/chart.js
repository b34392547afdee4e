// Admissions per minute per gate: one uPlot line chart, re-made when the gates change and fed
// new data otherwise.
import uPlot from "./vendor/uplot.js";

export const COLOURS = [
  "#4ade80", "#60a5fa", "#fbbf24", "#f472b6", "#a78bfa", "#22d3ee", "#fb923c", "#f87171",
  "#a3e635", "#e879f9", "#2dd4bf", "#facc15",
];
const AXIS = {
  stroke: "#cbd5e1",
  grid: { stroke: "#1e293b", width: 1 },
  ticks: { stroke: "#334155", width: 1 },
  font: "13px system-ui, sans-serif",
};

const steps = uPlot.paths.stepped({ align: 1 }); // a minute's count holds for that minute
let plot = null;
let shape = "";

function size(element) {
  const legend = element.querySelector(".u-legend");
  const legendHeight = legend ? legend.offsetHeight : 28;
  return {
    width: Math.max(200, element.clientWidth),
    height: Math.max(120, element.clientHeight - legendHeight - 8),
  };
}

function options(element, names, colours, timezone) {
  return {
    ...size(element),
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), timezone),
    scales: {
      x: { time: true, range: (u, min, max) => [min, max] },
      y: { range: (u, min, max) => [0, Math.max(5, max)] },
    },
    axes: [{ ...AXIS }, { ...AXIS, size: 44 }],
    cursor: { drag: { x: false, y: false } },
    legend: { live: false },
    series: [
      { label: "minute" },
      ...names.map((name, i) => ({
        label: name,
        stroke: colours[i],
        fill: `${colours[i]}33`,
        width: 2,
        paths: steps,
        points: { show: false },
      })),
    ],
  };
}

// Draws `chart` ({minutes, gates: {id: counts}}): `gates` lists [id, name] in the gate table's
// order, which gives each gate its colour there and here; times in `timezone`.
export function drawChart(element, chart, gates, timezone) {
  const shown = gates.map(([id, name], i) => [id, name, COLOURS[i % COLOURS.length]])
    .filter(([id]) => id in chart.gates);
  const ids = shown.map(([id]) => id);
  const labels = shown.map(([, name]) => name);
  const colours = shown.map(([, , colour]) => colour);
  const minutes = closed(chart.minutes, chart.minutes.at(-1) + 60);
  const data = [minutes, ...ids.map((id) => closed(chart.gates[id]))];
  const key = JSON.stringify([labels, colours, timezone]);
  if (plot && key === shape) {
    plot.setData(data);
  } else {
    if (plot) plot.destroy();
    element.replaceChildren();
    plot = new uPlot(options(element, labels, colours, timezone), data, element);
    shape = key;
  }
  let total = 0;
  for (const id of ids) for (const n of chart.gates[id]) total += n;
  element.dataset.total = String(total);
  element.dataset.series = String(ids.length);
}

// A step holds its value until the next point: one more point a minute after the last, with
// the last value, gives the minute under way its full width (not a thin line at the edge).
function closed(values, next = values.at(-1)) {
  return values.length ? [...values, next] : values;
}

export function resizeChart(element) {
  if (plot) plot.setSize(size(element));
}
