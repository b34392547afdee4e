// Puts one figures message (GET .../dashboard) on the page. Every number shown is read from
// `stats` (the stats endpoint's answer, the same as `tessera stats`) or from the gate's
// connection (`gates`); nothing is added up here but the chart's total.
import { drawChart, resizeChart, COLOURS } from "./chart.js";

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat();
let last = null; // { data, offset }: the latest message, and syncd's clock minus ours (ms)

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function serverNow() {
  return (Date.now() + (last ? last.offset : 0)) / 1000;
}

export function ago(seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

function when(unix) {
  return unix == null ? null : ago(serverNow() - unix);
}

function isoUnix(iso) {
  return iso ? Date.parse(iso) / 1000 : null;
}

function words(reason) {
  return reason.replaceAll("_", " ");
}

function tiles(data) {
  const s = data.stats;
  const capacity = data.event.capacity || {};
  $("inside").textContent = fmt.format(s.inside);
  meter($("inside-meter"), $("inside-capacity"), s.inside, capacity["*"]);
  $("admitted").textContent = fmt.format(s.admitted);
  $("exits").textContent = `${fmt.format(s.exits)} exits`;
  $("denied").textContent = fmt.format(s.denied);
  $("annulled").textContent = s.annulled ? `${fmt.format(s.annulled)} admissions annulled` : "";
  $("conflicts").textContent = fmt.format(s.conflicts);
  $("conflicts").parentElement.dataset.alert = s.conflicts > 0 ? "warn" : "";
  const gates = Object.values(data.gates).filter((g) => g.state === "enrolled");
  const online = gates.filter((g) => g.online).length;
  $("gates-online").textContent = `${online} / ${gates.length}`;
  $("gates-online").parentElement.dataset.alert = online < gates.length ? "bad" : "";
  const unsynced = gates.reduce((n, g) => n + (g.backlog || 0), 0);
  $("gates-backlog").textContent = `${fmt.format(unsynced)} scans unsynced`;
}

function meter(bar, label, inside, capacity) {
  if (!capacity) {
    bar.hidden = true;
    label.textContent = "no capacity set";
    return;
  }
  const share = inside / capacity;
  bar.hidden = false;
  bar.dataset.level = share >= 1 ? "bad" : share >= 0.9 ? "warn" : "ok";
  bar.firstElementChild.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
  label.textContent = `of ${fmt.format(capacity)} (${Math.round(share * 100)} %)`;
}

function zones(data) {
  const s = data.stats;
  const capacity = data.event.capacity || {};
  const names = [...data.event.zones];
  for (const z of Object.keys(s.zones)) if (!names.includes(z)) names.push(z);
  const list = $("zones");
  list.replaceChildren();
  for (const name of names) {
    const figures = s.zones[name] || { inside: 0 };
    const row = el("li");
    row.dataset.zone = name;
    row.append(el("span", "name", name || "(no zone)"));
    row.append(el("span", "inside", fmt.format(figures.inside)));
    const cap = capacity[name];
    row.append(el("span", "cap", cap ? `/ ${fmt.format(cap)}` : ""));
    const bar = el("div", "meter");
    bar.append(el("span"));
    const label = el("span", "sr");
    meter(bar, label, figures.inside, cap);
    row.append(bar);
    list.append(row);
  }
  if (!names.length) list.append(el("li", "none", "No zones"));
}

function denials(data) {
  const list = $("denials");
  list.replaceChildren();
  const entries = Object.entries(data.stats.denials);
  const most = Math.max(1, ...entries.map(([, n]) => n));
  for (const [reason, n] of entries) {
    const row = el("li");
    row.dataset.reason = reason;
    row.append(el("span", "name", words(reason)));
    row.append(el("span", "n", fmt.format(n)));
    const bar = el("div", "bar");
    const fill = el("span");
    fill.style.width = `${((n / most) * 100).toFixed(1)}%`;
    bar.append(fill);
    row.append(bar);
    list.append(row);
  }
  if (!entries.length) list.append(el("li", "none", "No denials"));
}

function statusCell(conn) {
  if (conn.state === "pending") return ["not enrolled", "muted"];
  if (conn.state === "revoked") return ["revoked", "muted"];
  return conn.online ? ["online", "ok"] : ["offline", "bad"];
}

function backlogText(conn) {
  if (conn.backlog == null) return ["unknown", "muted", "This gate does not report it (a gate built before the dashboard), or has pushed nothing yet."];
  if (conn.online) return [fmt.format(conn.backlog), conn.backlog > 0 ? "warn" : "", `reported ${when(conn.backlog_at)}`];
  return [`≥ ${fmt.format(conn.backlog)}`, "warn", `reported ${when(conn.backlog_at)}; offline, so more may wait`];
}

function skewText(skew) {
  if (skew == null) return ["–", "muted"];
  const text = `${skew >= 0 ? "+" : "−"}${Math.abs(skew).toFixed(1)} s`;
  return [text, Math.abs(skew) >= 30 ? "bad" : Math.abs(skew) >= 5 ? "warn" : ""];
}

function cell(row, text, className, label, title) {
  const td = el("td", className, text);
  td.dataset.label = label;
  if (title) td.title = title;
  row.append(td);
  return td;
}

function gateRows(data) {
  const body = $("gate-rows");
  body.replaceChildren();
  data.stats.gates.forEach((g, i) => {
    const conn = data.gates[String(g.gate_id)] || { state: "pending", online: false };
    const row = el("tr");
    row.dataset.gateId = String(g.gate_id);
    const name = el("th", "gate-name");
    name.scope = "row";
    const swatch = el("span", "swatch");
    swatch.dataset.colour = String(i % COLOURS.length);
    name.append(swatch, el("span", "", g.name));
    if (g.zone) name.append(el("span", "zone", g.zone));
    row.append(name);
    const [status, level] = statusCell(conn);
    const seen = when(Math.max(conn.seen_at || 0, isoUnix(g.last_push_at) || 0) || null);
    cell(row, status, `status ${level}`, "Status", seen ? `seen ${seen}` : "never seen");
    cell(row, when(isoUnix(g.last_push_at)) || "never", "pushed", "Last push");
    const [skew, skewLevel] = skewText(g.last_push_at ? g.skew : null);
    cell(row, skew, `skew ${skewLevel}`, "Clock");
    const [backlog, backlogLevel, backlogTitle] = backlogText(conn);
    cell(row, backlog, `backlog ${backlogLevel}`, "Unsynced", backlogTitle);
    const drill = g.last_drill;
    const drillCell = cell(row, drill ? `${drill.result} · ${when(isoUnix(drill.at))}` : "never",
      `drill ${drill ? drill.result : "muted"}`, "Last drill",
      drill && drill.failing && drill.failing.length ? `failing: ${drill.failing.join(", ")}` : "");
    drillCell.dataset.result = drill ? drill.result : "never";
    cell(row, fmt.format(g.admitted), "num admitted", "In");
    cell(row, fmt.format(g.denied), "num denied", "Denied");
    cell(row, fmt.format(g.conflicts), `num conflicts ${g.conflicts ? "warn" : ""}`, "Conflicts");
    body.append(row);
  });
  if (!data.stats.gates.length) {
    const row = el("tr");
    const td = el("td", "none", "No gates yet: create one with tessera gates create.");
    td.colSpan = 9;
    row.append(td);
    body.append(row);
  }
}

export function render(data) {
  last = { data, offset: data.at * 1000 - Date.now() };
  document.title = `${data.event.name} · Tessera Doors`;
  tiles(data);
  zones(data);
  denials(data);
  gateRows(data);
  const gates = data.stats.gates.map((g) => [String(g.gate_id), g.name]);
  drawChart($("chart"), data.chart, gates, data.event.timezone || "UTC");
  $("board").dataset.at = String(data.at);
  $("updated").textContent = updated(data);
}

function updated(data) {
  const zone = data.event.timezone || "UTC";
  const time = new Date(data.at * 1000).toLocaleTimeString([], { timeZone: zone });
  return `Updated ${time} (${zone})`;
}

// Every second: "N s ago" moves on, and figures older than 30 s are marked stale.
export function tick() {
  if (!last) return;
  const age = serverNow() - last.data.at;
  document.body.dataset.stale = age > 30 ? "yes" : "";
  if (Math.round(age) % 5 === 0) gateRows(last.data);
  $("updated").textContent = updated(last.data)
    + (age > 30 ? ` · no news for ${Math.round(age)} s` : "");
}

new ResizeObserver(() => resizeChart($("chart"))).observe($("chart"));
