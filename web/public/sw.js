// The dashboard's service worker: it keeps the app's shell (the page, its
// hashed scripts and styles, the icons) so the dashboard opens — and says the
// daemon is offline — when the daemon is not running; it shows the
// notifications the page asks for and the daemon's Web Push messages (the
// same tag per session, so one replaces the other), and opens the session
// clicked. It never keeps an API answer: /api and /login always go to the
// daemon.
"use strict";
const SHELL = "clauderon-shell-v1";
const PRECACHE = ["/", "/manifest.webmanifest", "/icon.svg", "/icon-192.png"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname === "/login") return;
  if (url.pathname.startsWith("/assets/")) {
    // Hashed names never change: the cache first, the daemon once.
    event.respondWith(
      caches.match(event.request).then(
        (hit) =>
          hit ||
          fetch(event.request).then((resp) => {
            if (resp.ok) {
              const copy = resp.clone();
              caches.open(SHELL).then((c) => c.put(event.request, copy));
            }
            return resp;
          }),
      ),
    );
    return;
  }
  if (event.request.mode === "navigate") {
    // The daemon first (a new build), the kept shell when it is away.
    event.respondWith(
      fetch(event.request)
        .then((resp) => {
          if (resp.ok) {
            const copy = resp.clone();
            caches.open(SHELL).then((c) => c.put("/", copy));
          }
          return resp;
        })
        .catch(() => caches.match("/")),
    );
  }
});

self.addEventListener("push", (event) => {
  // The daemon's message: {title, body, tag, url}; anything else is shown as it came.
  let message;
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(message.title || "clauderon", {
      body: message.body || "",
      tag: message.tag || "clauderon",
      icon: "/icon-192.png",
      data: { url: typeof message.url === "string" && message.url.startsWith("/") ? message.url : "/" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).origin === location.origin);
      if (open) return open.navigate(target).then((w) => (w || open).focus());
      return self.clients.openWindow(target);
    }),
  );
});
