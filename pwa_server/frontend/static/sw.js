// Caches the shell, styles and install guides only: never flow pages, downloads or secrets.
"use strict";
// A new name whenever a cached file changes: the old cache is dropped on activation.
const CACHE = "shomei-shell-v4";
const SHELL = [
  "/static/app.css",
  "/static/app.js",
  "/static/browser.js",
  "/static/password_reveal.js",
  "/static/icon.svg",
  "/static/manifest.webmanifest",
];
const GUIDES = ["/guide/ios", "/guide/android"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
  } else if (GUIDES.includes(url.pathname)) {
    // Network first, so guides stay current; the cached copy helps offline at install time.
    event.respondWith(
      fetch(event.request)
        .then((response) => {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
          return response;
        })
        .catch(() => caches.match(event.request))
    );
  }
});
