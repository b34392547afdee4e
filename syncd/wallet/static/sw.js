// The wallet's service worker: keeps the page's own files so the ticket opens with no network
// (at the door, in a basement). Cache-first for those files, never anything under api/ (a pass
// must come fresh from syncd). Bump VERSION with any change here, so phones fetch the new files
// and drop the old cache.
const VERSION = "1";
const CACHE = `tessera-wallet-v${VERSION}`;
const FILES = [
  "./",
  "wallet.js",
  "live.js",
  "codes.js",
  "store.js",
  "wallet.css",
  "vendor/qrcode-generator.js",
  "manifest.webmanifest",
  "icon.svg",
  "icon-192.png",
  "icon-512.png",
];
const SCOPE = new URL("./", self.location).pathname;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(FILES.map((f) => new Request(f, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => names.filter((n) => n.startsWith("tessera-wallet-") && n !== CACHE))
      .then((old) => Promise.all(old.map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith(SCOPE) || url.pathname.startsWith(`${SCOPE}api/`)) return;
  const page = event.request.mode === "navigate" ? "./" : event.request;
  event.respondWith(
    caches.match(page, { cacheName: CACHE, ignoreSearch: true })
      .then((hit) => hit || fetch(event.request)),
  );
});
