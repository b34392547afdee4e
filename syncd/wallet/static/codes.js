// The holder's half of the T2 ticket (shared/rotating.py, design section 5): the step, the holder
// signature, the QR text and its picture. Pure functions apart from WebCrypto and a canvas; the
// page (wallet.js) decides when to call them.
import qrcode from "./vendor/qrcode-generator.js";

export const PASS_SIZE = 127;
const DOMAIN = new TextEncoder().encode("TESSERA-T2\0");
const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const QUIET_MODULES = 4;
const MAX_STEP = 2 ** 32 - 1;

/** RFC 9285 base45, the same text as shared/base45.py's b45encode. */
export function base45(bytes) {
  let out = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const n = bytes[i] * 256 + bytes[i + 1];
    out += BASE45[n % 45] + BASE45[Math.floor(n / 45) % 45] + BASE45[Math.floor(n / 2025)];
  }
  if (bytes.length % 2) {
    const n = bytes[bytes.length - 1];
    out += BASE45[n % 45] + BASE45[Math.floor(n / 45)];
  }
  return out;
}

/** Unpadded base64url, as syncd sends the pass and takes the holder key. */
export function toBase64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The step a clock reading ``seconds`` shows: floor(seconds / period) (rotating.step_at). */
export function stepAt(seconds, period) {
  return Math.min(Math.max(Math.floor(seconds / period), 0), MAX_STEP);
}

/** A fresh holder key pair: the private half can sign but can never be read out of the browser. */
export async function makeHolderKeys() {
  const keys = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  return { keys, holderKey: toBase64url(raw) };
}

/** The QR text for ``step``: "T2:" + base45(pass || step || holder signature). */
export async function codeText(pass, privateKey, step) {
  const body = new Uint8Array(PASS_SIZE + 4);
  body.set(pass);
  new DataView(body.buffer).setUint32(PASS_SIZE, step, false);
  const signed = new Uint8Array(DOMAIN.length + body.length);
  signed.set(DOMAIN);
  signed.set(body, DOMAIN.length);
  const signature = new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, signed));
  const code = new Uint8Array(body.length + signature.length);
  code.set(body);
  code.set(signature, body.length);
  return "T2:" + base45(code);
}

/** The QR's modules: alphanumeric mode, level M, the smallest version that holds ``text``. */
export function qrModules(text) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Alphanumeric");
  qr.make();
  return qr;
}

/** Draws ``qr`` on ``canvas`` with a white quiet zone, ``cell`` device pixels per module. */
export function drawQr(canvas, qr, cell) {
  const count = qr.getModuleCount();
  canvas.width = canvas.height = (count + 2 * QUIET_MODULES) * cell;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#000";
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) {
      if (qr.isDark(row, col)) {
        ctx.fillRect((col + QUIET_MODULES) * cell, (row + QUIET_MODULES) * cell, cell, cell);
      }
    }
  }
}

/** The module size (device pixels) of the biggest code, quiet zone included, that fits ``side``. */
export function cellFor(qr, side) {
  const total = qr.getModuleCount() + 2 * QUIET_MODULES;
  return Math.max(1, Math.floor(side / total));
}
