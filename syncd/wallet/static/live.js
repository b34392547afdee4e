// The live code on screen: signs the code of the current step, draws it as large as its box
// allows with a whole number of device pixels per module (crisp at any zoom), and redraws at
// each step boundary: the timer is aimed at the next boundary every step, so it never drifts.
// A bar under the code runs down the step's time. The screen is kept on while a code shows.
import { cellFor, codeText, drawQr, qrModules, stepAt } from "./codes.js";

const $ = (id) => document.getElementById(id);
const canvas = document.createElement("canvas");
const LATE_MS = 10; // fire just after the boundary, never just before it

let live = null; // { pass, privateKey, period, offset, step, text, cell }
let timer = null;
let wakeLock = null;
let drawn = 0; // draws started: only the latest may mark the picture as showing

/** Shows codes for ``spec`` = { pass (bytes), privateKey, period, offset (s), onError }; the
 * same pass again (a refresh) only takes the new offset, without a redraw. */
export function showCode(spec) {
  if (live && sameCode(live, spec)) {
    live.offset = spec.offset;
    return;
  }
  stopCode();
  live = { ...spec, step: null, text: null, cell: null };
  run(live);
  keepAwake();
}

function sameCode(a, b) {
  return (
    a.period === b.period && a.pass.length === b.pass.length &&
    a.pass.every((byte, i) => byte === b.pass[i]) // the pass names the holder key: same key too
  );
}

export function stopCode() {
  live = null;
  clearTimeout(timer);
  delete document.body.dataset.step;
  delete $("qr").dataset.code;
  wakeLock?.release().catch(() => {});
  wakeLock = null;
}

function run(current) {
  tick(current).catch((error) => current === live && current.onError(error));
}

async function tick(current) {
  if (current !== live) return;
  const now = Date.now() / 1000 + current.offset;
  const step = stepAt(now, current.period);
  if (step !== current.step) {
    const text = await codeText(current.pass, current.privateKey, step);
    if (current !== live) return;
    await draw(current, text);
    if (current !== live) return;
    current.step = step;
    document.body.dataset.step = String(step);
  }
  countdown(Date.now() / 1000 + current.offset, current.period);
  const boundary = ((step + 1) * current.period - current.offset) * 1000;
  clearTimeout(timer);
  timer = setTimeout(() => run(current), Math.max(boundary - Date.now(), 0) + LATE_MS);
}

/** Draws ``text`` in #qr-box; #qr[data-code] changes only once the new picture is showing,
 * and only for the latest draw (a resize may redraw while a new step is being drawn). */
async function draw(current, text) {
  const mine = ++drawn;
  const qr = qrModules(text);
  const dpr = window.devicePixelRatio || 1;
  current.text = text;
  current.cell = cellFor(qr, room() * dpr);
  drawQr(canvas, qr, current.cell);
  const img = $("qr");
  img.src = canvas.toDataURL("image/png");
  img.style.width = img.style.height = `${canvas.width / dpr}px`;
  $("countdown").style.width = img.style.width;
  await img.decode().catch(() => {});
  if (mine === drawn && current === live) img.dataset.code = text;
}

function countdown(now, period) {
  const left = period - (now - Math.floor(now / period) * period);
  const bar = $("countdown-bar");
  bar.style.transition = "none";
  bar.style.transform = `scaleX(${left / period})`;
  void bar.offsetWidth; // commit the start before the transition
  bar.style.transition = `transform ${left.toFixed(3)}s linear`;
  bar.style.transform = "scaleX(0)";
}

async function keepAwake() {
  if (!live || document.visibilityState !== "visible" || (wakeLock && !wakeLock.released)) return;
  try {
    wakeLock = await navigator.wakeLock.request("screen");
  } catch {
    wakeLock = null; // not offered (or refused): the phone's own screen timeout applies
  }
  if (!live) wakeLock?.release().catch(() => {}); // the code stopped while asking
}

/** A resized box (rotation, window size) redraws the same code at the new size. */
function redrawIfResized() {
  const current = live;
  if (!current || !current.text) return;
  const cell = cellFor(qrModules(current.text), room() * (window.devicePixelRatio || 1));
  if (cell !== current.cell) draw(current, current.text).catch(current.onError);
}

/** The side (CSS px) the code may take: #code's box less the countdown under it. */
function room() {
  const code = $("code");
  const bar = $("countdown");
  const barSpace = bar.offsetHeight + parseFloat(getComputedStyle(bar).marginTop || "0");
  return Math.min(code.clientWidth, code.clientHeight - barSpace);
}

/** Timers sleep in a hidden tab: coming back shows the right step at once. */
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible" || !live) return;
  run(live);
  keepAwake();
});
new ResizeObserver(redrawIfResized).observe($("code"));
