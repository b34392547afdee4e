// The wallet page (issue 17): claims a ticket from the link in the holder's e-mail, keeps the
// pass and a non-extractable holder key on the phone, and shows the live T2 code, redrawn at
// every step. Works offline once loaded (sw.js). syncd's API: POST api/claim and api/pass.
// Read-only state for tests: body[data-state], body[data-step], #qr[data-code].
import * as store from "./store.js";
import { PASS_SIZE, fromBase64url, makeHolderKeys } from "./codes.js";
import { showCode, stopCode } from "./live.js";

const $ = (id) => document.getElementById(id);

const NOTICES = {
  empty: ["No ticket on this phone yet", "Open the link from your ticket e-mail on this phone."],
  claiming: ["Getting your ticket…", "This takes a moment the first time."],
  claimed_elsewhere: [
    "This ticket was moved to another phone",
    "Its codes now show only on the phone that opened the ticket link last. If that was not " +
      "you, contact the organiser.",
  ],
  bad_status: [
    "This ticket can no longer be used",
    "It was cancelled or changed: contact the organiser.",
  ],
  unknown_link: [
    "This link does not work",
    "Open the whole link from your ticket e-mail, or ask the organiser for a new one.",
  ],
  invalid: ["This link is damaged", "Open the whole link from your ticket e-mail."],
  claim_rate_limited: [
    "Please wait a moment",
    "This ticket moved to a phone moments ago. Try again {later}.",
  ],
  claim_limit: [
    "This link has been used up",
    "It moved the ticket between phones too often: ask the organiser for a new link.",
  ],
  key_unavailable: [
    "This ticket needs a new link",
    "Its signing key was retired: ask the organiser.",
  ],
  offline: ["No connection", "The first opening needs the internet. Connect and try again."],
  server: ["The ticket server did not answer", "Try again in a minute."],
  unsupported: [
    "This browser cannot show the ticket",
    "Update it, or open the link in a recent Chrome, Safari or Firefox.",
  ],
};
const FINAL_CLAIM_ERRORS = new Set([
  "unknown_link", "invalid", "bad_status", "claimed_elsewhere", "claim_limit", "key_unavailable",
]);

const wallet = { tickets: [], current: null, offset: 0, retry: null };

/** Thrown when syncd could not be reached (the phone is offline or syncd is down). */
class OfflineError extends Error {}

// ---- syncd ---------------------------------------------------------------------------------

/** POST api/ENDPOINT; the answer with the device time halfway through (for the clock offset). */
async function ask(endpoint, token, holderKey) {
  const sent = Date.now();
  let response;
  try {
    response = await fetch(`api/${endpoint}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token, holder_key: holderKey }),
      cache: "no-store",
    });
  } catch {
    throw new OfflineError();
  }
  const body = await response.json().catch(() => ({}));
  const deviceTime = (sent + Date.now()) / 2000;
  const retryAfter = response.headers.get("Retry-After");
  return { status: response.status, body, deviceTime, retryAfter };
}

/** The error code of a failed answer: syncd's, or "server" for anything the page cannot name. */
function errorCode(answer) {
  const code = answer.body && answer.body.error;
  return typeof code === "string" && Object.hasOwn(NOTICES, code) ? code : "server";
}

/** A 200 answer is used only if its pass is a T2 pass bound to this phone's key. */
function acceptable(body, holderKey) {
  try {
    const pass = fromBase64url(body.pass);
    const bound = fromBase64url(holderKey);
    const inPass = pass.slice(31, 63);
    return (
      pass.length === PASS_SIZE && pass[0] === 2 && Number.isInteger(body.period) &&
      body.period >= 2 && inPass.every((b, i) => b === bound[i])
    );
  } catch {
    return false;
  }
}

// ---- claiming and refreshing ---------------------------------------------------------------

function takeClaimToken() {
  const token = new URLSearchParams(location.hash.slice(1)).get("claim");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return token || null;
}

/** Claims ``token`` for this phone with ``holder`` = { keys, holderKey }, or a key pair made
 * now; the pair is stored before asking, so a retry (or a reload) claims with the same key. */
async function claim(token, holder = null) {
  showNotice("claiming");
  const pendingKey = `pending:${token}`;
  let pending = await store.get(pendingKey);
  if (!pending) {
    const made = holder || (await makeHolderKeys().catch(() => null));
    if (!made) return showNotice("unsupported"); // no Ed25519 in this browser's WebCrypto
    pending = { token, keys: made.keys, holderKey: made.holderKey };
    await store.put(pendingKey, pending);
  }
  let answer;
  try {
    answer = await ask("claim", token, pending.holderKey);
  } catch (e) {
    if (!(e instanceof OfflineError)) throw e;
    return showNotice("offline", { retry: () => claim(token) });
  }
  if (answer.status === 200 && acceptable(answer.body, pending.holderKey)) {
    await store.remove(pendingKey);
    navigator.storage?.persist?.().catch(() => {});
    return show(await keep({ ...pending, status: "live" }, answer));
  }
  const code = answer.status === 200 ? "server" : errorCode(answer);
  if (FINAL_CLAIM_ERRORS.has(code)) await store.remove(pendingKey);
  showNotice(code, {
    retry: FINAL_CLAIM_ERRORS.has(code) ? null : () => claim(token),
    retryAfter: answer.retryAfter,
  });
}

/** Stores the ticket with its new pass and the clock offset measured on the answer. */
async function keep(ticket, answer) {
  wallet.offset = answer.body.server_time - answer.deviceTime;
  await store.put("clock", { offset: wallet.offset, at: Date.now() });
  const updated = { ...ticket, pass: answer.body, id: store.ticketKey(answer.body) };
  await store.put(updated.id, updated);
  wallet.tickets = await store.withPrefix("ticket:");
  return updated;
}

/** Asks syncd for the ticket's current pass; a failed connection changes nothing. */
async function refresh(ticket) {
  let answer;
  try {
    answer = await ask("pass", ticket.token, ticket.holderKey);
  } catch (e) {
    if (e instanceof OfflineError) return ticket;
    throw e;
  }
  if (answer.status === 200 && acceptable(answer.body, ticket.holderKey)) {
    return keep({ ...ticket, status: "live" }, answer);
  }
  const code = errorCode(answer);
  if (code !== "claimed_elsewhere" && code !== "bad_status") return ticket;
  const ended = { ...ticket, status: code === "claimed_elsewhere" ? "moved" : "ended" };
  await store.put(ended.id, ended);
  wallet.tickets = await store.withPrefix("ticket:");
  return ended;
}

async function refreshAll() {
  for (const ticket of wallet.tickets) {
    const fresh = await refresh(ticket);
    if (wallet.current && fresh.id === wallet.current.id) show(fresh);
  }
}

/** A mail link of a ticket this phone holds refreshes it; moved elsewhere, claims it back. */
async function openLink(token) {
  const held = wallet.tickets.find((t) => t.token === token);
  if (!held) return claim(token);
  show(held);
  const fresh = await refresh(held);
  if (fresh.status === "moved") return claim(token, held);
  show(fresh);
}

/** Claims whose answer never came (the phone went offline), tried again quietly beside the
 * ticket on screen; one that succeeds joins the wallet's tickets. */
async function finishPending(pendings) {
  for (const pending of pendings) {
    const answer = await ask("claim", pending.token, pending.holderKey).catch(() => null);
    if (answer && answer.status === 200 && acceptable(answer.body, pending.holderKey)) {
      await store.remove(`pending:${pending.token}`);
      await keep({ ...pending, status: "live" }, answer);
    }
  }
}

// ---- the screen ----------------------------------------------------------------------------

function setState(state) {
  document.body.dataset.state = state;
}

function showNotice(name, { retry = null, retryAfter = null, details = false } = {}) {
  stopCode();
  $("details").hidden = !details;
  $("clock-warning").hidden = true;
  const [title, text] = NOTICES[name];
  $("notice-title").textContent = title;
  $("notice-text").textContent = text.replace("{later}", later(retryAfter));
  $("notice").hidden = false;
  $("code").hidden = true;
  wallet.retry = retry;
  $("retry").hidden = !retry;
  const states = { claiming: "claiming", empty: "empty", claimed_elsewhere: "moved" };
  setState(states[name] || "error");
}

function later(retryAfter) {
  const seconds = Number(retryAfter);
  if (!Number.isFinite(seconds) || seconds <= 0) return "later";
  if (seconds < 90) return `in ${Math.ceil(seconds)} seconds`;
  return `in ${Math.ceil(seconds / 60)} minutes`;
}

function eventWhen(event) {
  if (!event.starts_at) return event.venue || "";
  let when = event.starts_at;
  try {
    when = new Intl.DateTimeFormat(undefined, {
      dateStyle: "medium", timeStyle: "short", timeZone: event.timezone || undefined,
    }).format(new Date(event.starts_at));
  } catch {
    // an unknown time zone: the ISO text is still right
  }
  return [when, event.venue].filter(Boolean).join(" · ");
}

function showDetails(pass) {
  $("event-name").textContent = pass.event.name;
  $("event-when").textContent = eventWhen(pass.event);
  $("holder").textContent = pass.holder || "";
  $("holder").hidden = !pass.holder;
  $("category").textContent = pass.category || "";
  $("ticket-no").textContent = `Ticket ${pass.ticket_id}`;
  $("period").textContent = String(pass.period);
  $("details").hidden = false;
  const position = wallet.tickets.findIndex((t) => t.id === wallet.current.id);
  $("switcher").hidden = wallet.tickets.length < 2;
  $("position").textContent = `Ticket ${position + 1} of ${wallet.tickets.length}`;
}

function showClockWarning(period) {
  const off = Math.round(wallet.offset);
  const warn = Math.abs(wallet.offset) > Math.max(2, period / 2);
  $("clock-warning").hidden = !warn;
  if (!warn) return;
  const size = Math.abs(off);
  const amount = size < 120 ? `${size} s` : `${Math.round(size / 60)} min`;
  $("clock-warning").textContent =
    `Your phone's clock is ${amount} ${off > 0 ? "behind" : "ahead"}: codes are corrected, ` +
    "but set the clock automatically in Settings.";
}

/** Shows ``ticket``: its live code, or why there is none. */
function show(ticket) {
  wallet.current = ticket;
  store.put("current", ticket.id).catch(() => {});
  showDetails(ticket.pass);
  if (ticket.status === "moved" || ticket.status === "ended") {
    const why = ticket.status === "moved" ? "claimed_elsewhere" : "bad_status";
    return showNotice(why, { details: true });
  }
  $("notice").hidden = true;
  wallet.retry = null; // nothing left to retry: an "online" event must not claim again
  $("code").hidden = false;
  showClockWarning(ticket.pass.period);
  setState("live");
  showCode({
    pass: fromBase64url(ticket.pass.pass),
    privateKey: ticket.keys.privateKey,
    period: ticket.pass.period,
    offset: wallet.offset,
    onError: failed,
  });
}

function switchTicket(by) {
  const i = wallet.tickets.findIndex((t) => t.id === wallet.current.id);
  const n = wallet.tickets.length;
  show(wallet.tickets[(i + by + n) % n]);
}

function registerServiceWorker() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js", { scope: "./" }).catch(() => {});
  }
}

async function start() {
  registerServiceWorker();
  $("retry").addEventListener("click", () => wallet.retry && wallet.retry());
  $("prev").addEventListener("click", () => switchTicket(-1));
  $("next").addEventListener("click", () => switchTicket(1));
  addEventListener("online", () => (wallet.retry ? wallet.retry() : refreshAll()));
  addEventListener("hashchange", () => {
    const token = takeClaimToken();
    if (token) openLink(token).catch(failed);
  });
  const token = takeClaimToken();
  wallet.offset = (await store.get("clock"))?.offset || 0;
  wallet.tickets = await store.withPrefix("ticket:");
  if (token) return openLink(token);
  const pendings = await store.withPrefix("pending:");
  const currentId = await store.get("current");
  const current = wallet.tickets.find((t) => t.id === currentId) || wallet.tickets[0];
  if (!current) return pendings.length ? claim(pendings[0].token) : showNotice("empty");
  show(current); // at once, from the phone's own storage: no network needed
  await finishPending(pendings);
  await refreshAll();
}

function failed(error) {
  console.error(error);
  showNotice("server", { retry: () => location.reload() });
}

start().catch(failed);
