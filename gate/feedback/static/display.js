"use strict";
const $ = (id) => document.getElementById(id);
let holdTimer = null;

function showDecision(d) {
  const admit = d.outcome === "admit";
  document.body.className = admit ? "admit" : "deny";
  $("verdict").textContent = admit ? "ADMIT" : "DENY";
  $("message").textContent = d.message || "";
  $("category").textContent = d.category || "";
  $("holder").textContent = d.holder || "";
  clearTimeout(holdTimer);
  holdTimer = setTimeout(idle, d.hold_ms || 3000);
}

function idle() {
  document.body.className = "idle";
  $("verdict").textContent = "READY";
  $("message").textContent = "Show your ticket to the camera";
  $("category").textContent = "";
  $("holder").textContent = "";
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "list never synced";
  if (seconds < 90) return `list ${Math.round(seconds)} s old`;
  if (seconds < 5400) return `list ${Math.round(seconds / 60)} min old`;
  return `list ${(seconds / 3600).toFixed(1)} h old`;
}

function count(id, value) { $(id).textContent = value === undefined || value === null ? "–" : value; }

function showStatus(s) {
  if (s.gate_name) $("gate-name").textContent = s.gate_name;
  const online = Boolean(s.online);
  const revoked = s.sync_state === "revoked";
  $("link").textContent = online ? "ONLINE" : revoked ? "CREDENTIAL REVOKED" : "OFFLINE";
  $("link").className = "pill " + (online ? "online" : "offline");
  $("link").title = s.sync_error || "";
  $("list-age").textContent = age(s.list_age_s);
  count("admitted-today", s.admitted_today);
  count("inside-now", s.inside_now);
  count("unsynced", s.unsynced);
  const cam = s.camera;
  const banner = $("camera-banner");
  if (cam && cam.state !== "live") {
    banner.hidden = false;
    banner.dataset.state = cam.state;
    banner.textContent = `Camera ${cam.state}` + (cam.last_error ? `: ${cam.last_error}` : "");
  } else {
    banner.hidden = true;
    banner.dataset.state = cam ? cam.state : "none";
  }
  $("preview").hidden = !cam;
}

function connect() {
  const events = new EventSource("/events");
  events.addEventListener("decision", (e) => showDecision(JSON.parse(e.data)));
  events.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  events.onerror = () => { $("link").textContent = "NO GATE"; $("link").className = "pill offline"; };
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  if (!r.ok) throw new Error(await r.text());
  return r.json();
}

function resultRow(t) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = `#${t.ticket_id} ${t.holder || ""} · ${t.category || ""} · ${t.state || ""}`;
  const button = document.createElement("button");
  button.textContent = "Admit";
  button.onclick = async () => { $("results").replaceChildren(); showDecision(await post("/api/admit", { ticket_id: t.ticket_id })); };
  li.append(label, button);
  return li;
}

$("search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = $("q").value.trim();
  $("q").value = "";
  try {
    if (q.startsWith("T1:") || q.includes("://")) {
      showDecision(await post("/api/scan", { text: q }));
      return;
    }
    const found = (await post("/api/search", { q })).results;
    const rows = found.length ? found.map(resultRow) : [Object.assign(document.createElement("li"), { textContent: "No match" })];
    $("results").replaceChildren(...rows);
  } catch (err) {
    $("results").replaceChildren(Object.assign(document.createElement("li"), { textContent: String(err.message) }));
  }
});

setInterval(() => { if (!$("preview").hidden) $("preview").src = `/preview.jpg?t=${Date.now()}`; }, 250);
connect();
