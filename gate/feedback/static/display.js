"use strict";
// The kiosk page. Everyone: decisions, status, scans (camera, or a keyboard-wedge scanner
// typing anywhere on the page). Staff (after the PIN): search, admit by hand, direction.
const $ = (id) => document.getElementById(id);
const MAX_SCAN = 1024; // display_api.MAX_SCAN_CHARS: one more is sent, and is "Not a ticket"
const WEDGE_GAP_MS = 1000; // a pause this long between keys starts a new scan
let holdTimer = null;
let hasCamera = false;
let staffTimer = null;

function showDecision(d) {
  if (!d || !d.outcome) return; // a repeat of the scan just shown
  notice("");
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
  $("message").textContent = hasCamera ? "Show your ticket to the camera" : "Scan your ticket";
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
  const peers = $("peers");
  peers.hidden = s.peers_known === undefined;
  if (!peers.hidden) {
    peers.textContent = `PEERS ${s.peers_online}/${s.peers_known}`;
    peers.className = "pill " + (s.peers_online > 0 || s.peers_known === 0 ? "online" : "offline");
  }
  $("direction").hidden = s.mode !== "both";
  $("direction").textContent = s.direction === "out" ? "EXIT" : "ENTRY";
  $("turn").hidden = s.mode !== "both";
  count("admitted-today", s.admitted_today);
  count("inside-now", s.inside_now);
  count("unsynced", s.unsynced);
  showCamera(s.camera);
}

function showCamera(cam) {
  const banner = $("camera-banner");
  if (cam && cam.state !== "live") {
    banner.hidden = false;
    banner.dataset.state = cam.state;
    banner.textContent = `Camera ${cam.state}` + (cam.last_error ? `: ${cam.last_error}` : "");
  } else {
    banner.hidden = true;
    banner.dataset.state = cam ? cam.state : "none";
  }
  if (hasCamera !== Boolean(cam)) {
    hasCamera = Boolean(cam);
    if (document.body.className === "idle") idle();
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
  if (r.status === 401) staffMode({ pin_set: true, staff: false });
  if (!r.ok) throw new Error(await r.text());
  return r.json();
}

function looksLikeCode(text) { return /^\s*T\d:/.test(text) || text.includes("://"); }

function notice(text) { $("notice").textContent = text || ""; }

// -- staff ----------------------------------------------------------------------------------
function staffMode(s) {
  clearTimeout(staffTimer);
  $("search").hidden = !s.staff;
  $("pin-form").hidden = true;
  $("staff-open").hidden = s.staff || !s.pin_set;
  if (!s.staff) $("results").replaceChildren();
  if (s.staff && s.expires_in) staffTimer = setTimeout(refreshStaff, s.expires_in * 1000 + 500);
}

async function refreshStaff() {
  try { staffMode(await (await fetch("/api/staff")).json()); } catch (err) { notice(String(err)); }
}

$("staff-open").addEventListener("click", () => {
  $("staff-open").hidden = true;
  $("pin-form").hidden = false;
  $("pin").focus();
});
$("pin-cancel").addEventListener("click", () => { $("pin").value = ""; refreshStaff(); });
$("pin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const pin = $("pin").value;
  $("pin").value = "";
  if (looksLikeCode(pin)) { // a wedge scan while the PIN box had focus: a scan, not a guess
    refreshStaff();
    post("/api/scan", { text: pin }).then(showDecision, (err) => notice(String(err.message)));
    return;
  }
  try {
    staffMode({ pin_set: true, ...(await post("/api/staff/login", { pin })) });
    notice("");
  } catch (err) { notice(String(err.message)); $("pin").focus(); }
});
$("staff-lock").addEventListener("click", async () => {
  try { staffMode({ pin_set: true, ...(await post("/api/staff/logout", {})) }); } catch (err) { notice(String(err.message)); }
});
$("turn").addEventListener("click", async () => {
  const next = $("direction").textContent === "EXIT" ? "in" : "out";
  try { $("direction").textContent = (await post("/api/direction", { direction: next })).direction === "out" ? "EXIT" : "ENTRY"; } catch (err) { notice(String(err.message)); }
});

function resultRow(t) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = `#${t.ticket_id} ${t.holder || ""} · ${t.category || ""} · ${t.state || ""}`;
  const button = document.createElement("button");
  button.textContent = "Admit";
  button.onclick = async () => {
    $("results").replaceChildren();
    try { showDecision(await post("/api/admit", { ticket_id: t.ticket_id })); } catch (err) { notice(String(err.message)); }
  };
  li.append(label, button);
  return li;
}

$("search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = $("q").value.trim();
  $("q").value = "";
  try {
    if (looksLikeCode(q)) {
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

// -- keyboard-wedge scanner: keys typed anywhere but a text field, ended by Enter -------------
let wedge = "";
let wedgeAt = 0;
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.ctrlKey || e.altKey || e.metaKey) return;
  const now = performance.now();
  if (now - wedgeAt > WEDGE_GAP_MS) wedge = "";
  wedgeAt = now;
  if (e.key === "Enter") {
    e.preventDefault(); // not a click on a focused button
    const text = wedge.trim();
    wedge = "";
    if (text) post("/api/scan", { text }).then(showDecision, (err) => notice(String(err.message)));
  } else if (e.key.length === 1 || e.key === "Tab") {
    e.preventDefault();
    if (wedge.length <= MAX_SCAN) wedge += e.key === "Tab" ? "\t" : e.key;
  }
});

setInterval(() => { if (!$("preview").hidden) $("preview").src = `/preview.jpg?t=${Date.now()}`; }, 250);
refreshStaff();
connect();
