"use strict";
// The kiosk page. Everyone: decisions, status, scans (camera, or a keyboard-wedge scanner
// typing anywhere on the page). Staff (after the PIN): search, admit by hand, direction, annul
// the latest admission.
const $ = (id) => document.getElementById(id);
const MAX_SCAN = 1024; // display_api.MAX_SCAN_CHARS: one more is sent, and is "Not a ticket"
const WEDGE_GAP_MS = 1000; // a pause this long between keys starts a new scan
let holdTimer = null;
let hasCamera = false;
let gateRevoked = false; // syncd revoked this gate: every scan is refused until it is enrolled
let staffTimer = null;

function showDecision(d) {
  if (!d || !d.outcome) return; // a repeat of the scan just shown
  notice("");
  const admit = d.outcome === "admit";
  const annul = d.outcome === "annul"; // an admission undone: staff, or no passage came
  document.body.className = annul ? "annul" : admit ? "admit" : "deny";
  $("verdict").textContent = annul ? "ANNULLED" : admit ? "ADMIT" : "DENY";
  $("message").textContent = d.message || "";
  $("category").textContent = d.category || "";
  $("holder").textContent = d.holder || "";
  $("group").textContent = d.group ? d.group.message : ""; // "Group of 4: 3 admitted, ..."
  clearTimeout(holdTimer);
  holdTimer = setTimeout(idle, d.hold_ms || 3000);
}

function idle() {
  document.body.className = "idle";
  $("verdict").textContent = gateRevoked ? "CLOSED" : "READY";
  $("message").textContent = gateRevoked ? "This gate is not scanning: please use another gate"
    : hasCamera ? "Show your ticket to the camera" : "Scan your ticket";
  $("category").textContent = "";
  $("holder").textContent = "";
  $("group").textContent = "";
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
  const revoked = s.sync_state === "revoked" || Boolean(s.revoked);
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
  showRevoked(s);
}

function showRevoked(s) {
  const banner = $("revoked-banner");
  banner.hidden = !s.revoked;
  banner.textContent = !s.revoked ? ""
    : "Gate revoked by the organiser: " + (s.holder_data_deleted
      ? "holder names deleted from this gate." : "deleting holder names from this gate…")
      + " No scans until it is enrolled again (gate enroll).";
  if (gateRevoked !== Boolean(s.revoked)) {
    gateRevoked = Boolean(s.revoked);
    if (document.body.className === "idle") idle();
  }
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
// The pre-doors drill: its board (one row per check) in the results list; a tap closes it.
function drillRow(status, name, text) {
  const li = document.createElement("li");
  li.className = `drill ${status}`;
  const label = document.createElement("b");
  label.textContent = name;
  const figure = document.createElement("span");
  figure.textContent = text;
  li.append(label, figure);
  li.onclick = () => $("results").replaceChildren();
  return li;
}
$("drill").addEventListener("click", async () => {
  $("drill").disabled = true;
  notice("Drill running…");
  try {
    const b = await post("/api/drill", {});
    const text = (i) => (i.status === "skip" ? i.detail || i.figure // as `gate drill` prints it
      : i.status === "ok" || !i.detail ? i.figure : `${i.figure} · ${i.detail}`);
    const rows = b.items.map((i) => drillRow(i.status, i.name, text(i)));
    rows.unshift(drillRow(b.result, b.result.toUpperCase(), b.report || "not reported to syncd"));
    $("results").replaceChildren(...rows);
    notice("");
  } catch (err) { notice(String(err.message)); } finally { $("drill").disabled = false; }
});
$("staff-lock").addEventListener("click", async () => {
  try { staffMode({ pin_set: true, ...(await post("/api/staff/logout", {})) }); } catch (err) { notice(String(err.message)); }
});
$("annul").addEventListener("click", async () => {
  try { showDecision(await post("/api/annul", {})); } catch (err) { notice(String(err.message)); }
});
$("turn").addEventListener("click", async () => {
  const next = $("direction").textContent === "EXIT" ? "in" : "out";
  try { $("direction").textContent = (await post("/api/direction", { direction: next })).direction === "out" ? "EXIT" : "ENTRY"; } catch (err) { notice(String(err.message)); }
});

function resultRow(t) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = `#${t.ticket_id} ${t.holder || ""} · ${t.category || ""} · ${t.state || ""}`;
  const admit = (text, body) => {
    const button = document.createElement("button");
    button.textContent = text;
    button.onclick = async () => {
      $("results").replaceChildren();
      try { showDecision(await post("/api/admit", body)); } catch (err) { notice(String(err.message)); }
    };
    return button;
  };
  if (!t.group) {
    li.append(label, admit("Admit", { ticket_id: t.ticket_id }));
  } else if (t.group.too_large) { // more than GATE_GROUP_MAX: one by one
    label.textContent += ` · group of more than ${t.group.size}`;
    li.append(label, admit("Admit", { ticket_id: t.ticket_id, group: false }));
  } else { // its own ticket only, or the whole group (each member checked on its own)
    li.append(label, admit("Admit 1", { ticket_id: t.ticket_id, group: false }),
      admit(`Admit group of ${t.group.size}`, { ticket_id: t.ticket_id, group: true }));
  }
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
