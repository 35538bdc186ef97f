// Pingyi's service worker: keeps the app shell so the form works with no network.
//
// build.js (written by `pingyi build`) names this build and the files to keep. Because
// this script imports it, every new build changes the worker and the browser installs
// the new version: install fetches EVERY file into a new cache first, and fails (keeping
// the old version in charge) if any one cannot be fetched, so an update interrupted
// offline never leaves a kiosk with half an app. Only after a complete install does the
// new version take over and the old cache get deleted.
importScripts('./build.js');

const CACHE = 'pingyi-' + self.PINGYI_BUILD;
// The officials' console (admin/ beside this script) is a bundle of its own: it always
// comes from the network, never from the citizens' cache.
const CONSOLE = new URL('./admin', self.location).pathname;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    try {
      // cache: 'reload' bypasses the HTTP cache so the files are this build's.
      await cache.addAll(self.PINGYI_FILES.map((f) => new Request(f, { cache: 'reload' })));
    } catch (e) {
      await caches.delete(CACHE);
      throw e;
    }
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('pingyi-') && key !== CACHE) {
        await caches.delete(key);
      }
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  // The collection API is never answered from the cache, and its answers are never
  // cached: a ballot counts as delivered only when the server itself said so.
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.pathname.includes('/api/')) {
    return;
  }
  if (url.pathname === CONSOLE || url.pathname.startsWith(CONSOLE + '/')) {
    return;
  }
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const key = req.mode === 'navigate' ? './' : req;
    const hit = await cache.match(key, { ignoreSearch: true });
    if (hit) {
      return hit;
    }
    return fetch(req);
  })());
});
