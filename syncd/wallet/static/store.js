// The wallet's memory on the phone: one IndexedDB object store, because it is the only browser
// storage that keeps a CryptoKey as it is (a structured clone; the non-extractable private key
// never becomes bytes). Keys: "ticket:EVENT:TICKET" a claimed ticket, "pending:TOKEN" a claim
// whose answer has not arrived yet, "clock" the measured offset, "current" the ticket on screen.
const DB_NAME = "tessera-wallet";
const STORE = "wallet";

let opened = null;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function db() {
  if (!opened) {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    opened = request(req);
  }
  return opened;
}

async function objects(mode) {
  return (await db()).transaction(STORE, mode).objectStore(STORE);
}

export async function get(key) {
  return request((await objects("readonly")).get(key));
}

export async function put(key, value) {
  await request((await objects("readwrite")).put(value, key));
}

export async function remove(key) {
  await request((await objects("readwrite")).delete(key));
}

/** Every value whose key starts with ``prefix``, in key order. */
export async function withPrefix(prefix) {
  const range = IDBKeyRange.bound(prefix, prefix + "\uffff");
  return request((await objects("readonly")).getAll(range));
}

export function ticketKey(pass) {
  return `ticket:${pass.event.event_id}:${pass.ticket_id}`;
}
