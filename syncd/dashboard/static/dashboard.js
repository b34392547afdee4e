// The organisers' dashboard: sign in with an API token (kept in this tab's sessionStorage only),
// pick an event, and follow its figures pushed by syncd (GET .../dashboard/stream).
import { readEvents, HttpError } from "./stream.js";
import { render, tick } from "./render.js";

const TOKEN = "tessera.token";
const EVENT = "tessera.event";
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem(TOKEN);
let watching = null; // { eventId, controller }

function state(name) {
  document.body.dataset.state = name;
}

async function api(path, withToken = token) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${withToken}` },
    cache: "no-store",
  });
  if (!response.ok) throw new HttpError(response.status, null);
  return response.json();
}

function showSignIn(message) {
  stopWatching();
  state("signed-out");
  $("signin").hidden = false;
  for (const id of ["board", "no-events", "picker", "live", "who", "sign-out"]) $(id).hidden = true;
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

function signOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(EVENT);
  showSignIn(message);
}

async function signIn(event) {
  event.preventDefault();
  const candidate = $("token").value.trim();
  const button = $("signin-button");
  button.disabled = true;
  try {
    const who = await api("/api/v1/whoami", candidate);
    token = candidate;
    sessionStorage.setItem(TOKEN, token);
    await start(who);
  } catch (error) {
    const refused = error instanceof HttpError && (error.status === 401 || error.status === 403);
    showSignIn(refused
      ? "That token was refused. Check it and try again (it was not kept)."
      : "syncd cannot be reached. Try again in a moment.");
  } finally {
    button.disabled = false;
  }
}

async function start(who) {
  $("signin").hidden = true;
  $("who").hidden = false;
  $("who").textContent = `${who.org} · ${who.role}`;
  $("sign-out").hidden = false;
  const { events } = await api("/api/v1/events");
  const select = $("event-select");
  select.replaceChildren();
  if (!events.length) {
    state("no-events");
    $("no-events").hidden = false;
    return;
  }
  for (const e of events.slice().reverse()) {
    const option = document.createElement("option");
    option.value = String(e.event_id);
    option.textContent = e.name;
    select.append(option);
  }
  const remembered = sessionStorage.getItem(EVENT);
  if (remembered && events.some((e) => String(e.event_id) === remembered)) {
    select.value = remembered;
  }
  $("picker").hidden = false;
  watch(Number(select.value));
}

function stopWatching() {
  if (watching) watching.controller.abort();
  watching = null;
}

function live(text, kind) {
  $("live").hidden = false;
  $("live").dataset.kind = kind;
  $("live-text").textContent = text;
}

function notice(text) {
  $("notice").hidden = !text;
  $("notice").textContent = text || "";
}

async function watch(eventId) {
  stopWatching();
  sessionStorage.setItem(EVENT, String(eventId));
  const controller = new AbortController();
  watching = { eventId, controller };
  state("watching");
  $("board").hidden = false;
  notice("");
  let wait = 1000;
  while (!controller.signal.aborted) {
    live("connecting", "wait");
    let ended = "";
    try {
      await readEvents(`/api/v1/events/${eventId}/dashboard/stream`, token, controller.signal,
        (name, data) => {
          if (name === "figures") {
            wait = 1000;
            live("live", "ok");
            render(JSON.parse(data));
          } else if (name === "closed") {
            ended = JSON.parse(data).reason;
          }
        });
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof HttpError && error.status === 401) {
        signOut("The token is no longer valid: sign in again.");
        return;
      }
      if (error instanceof HttpError && (error.status === 404 || error.status === 403)) {
        live("no access", "bad");
        notice("This event cannot be shown with this token.");
        return;
      }
    }
    if (controller.signal.aborted) return;
    if (ended === "revoked") {
      signOut("The token was revoked: sign in with another.");
      return;
    }
    if (ended === "replaced") {
      live("closed", "bad");
      notice("Closed: this token opened too many dashboards at once. Reload to watch here.");
      return;
    }
    live("reconnecting", "wait");
    await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * 500));
    wait = Math.min(wait * 2, 15000);
  }
}

function main() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("event-select").addEventListener("change", (e) => watch(Number(e.target.value)));
  setInterval(tick, 1000);
  if (!token) {
    showSignIn("");
    return;
  }
  api("/api/v1/whoami")
    .then(start)
    .catch((error) => {
      if (error instanceof HttpError && error.status === 401) signOut("Sign in again.");
      else showSignIn("syncd cannot be reached. Try again in a moment.");
    });
}

main();
