// The dashboard's figures (run by `just bench` from tests/bench/sessions.rs,
// against a real daemon holding 1,000 stored sessions), in Debian's Chromium:
// - navigation to the rendered list of every session: from the navigation's
//   start to the end of the frame that draws the first screen of it, and to
//   the one that draws all its rows (the page's own clock), a fresh page
//   each time;
// - event-to-screen latency: the page changes a session's access mode
//   through the API and times until the list shows the new mode — the API's
//   answer, the event over the WebSocket and React's render together.
// Prints one JSON line: {"navigation_ms": [{screen, total, script, dom, lists, ...}...],
// "event_ms": [{total, api}...], "rows": N} (api: the PUT's own answer).
//
// Environment: BASE, LOGIN (a one-time link), SESSION and SESSION_NAME (a session's id and name),
// ROWS (how many rows to wait for), RUNS, EVENTS, SHOTS.
"use strict";
const { env, run } = require("./browser.cjs");

run(__filename, async (context, step) => {
  const rows = Number(env("ROWS"));
  const login = await context.newPage();
  await login.goto(env("LOGIN"));
  await login.locator("table.sessions").waitFor({ timeout: 30_000 });
  await login.close();

  const navigation = [];
  for (let i = 0; i < Number(env("RUNS")); i++) {
    const page = await context.newPage();
    // Timed by the page itself from its first frame (a poll installed once
    // `goto` returns can wait behind a long task and time the wrong moment):
    // each frame looks at the table; in the frame that has what is awaited, a
    // message posted from requestAnimationFrame is handled only after that
    // frame's style, layout and paint, so the time includes drawing it.
    // Two moments: the first screen drawn (rows down past the window's
    // bottom edge) and every one of the rows drawn.
    await page.addInitScript((n) => {
      const drawn = (key) => {
        const channel = new MessageChannel();
        channel.port1.onmessage = () => {
          window[key] ??= performance.now();
        };
        channel.port2.postMessage(null);
      };
      const tick = () => {
        const rows = document.querySelectorAll("table.sessions tbody tr");
        const last = rows[rows.length - 1];
        if (rows.length >= n || (last && last.getBoundingClientRect().bottom >= innerHeight)) drawn("__screenPainted");
        if (rows.length >= n) return drawn("__rowsPainted");
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    }, rows);
    await page.goto(`${env("BASE")}/`);
    const ms = await page.waitForFunction(() => window.__rowsPainted && [window.__screenPainted, window.__rowsPainted], null, {
      polling: 50,
      timeout: 30_000,
    });
    const [screen, total] = await ms.jsonValue();
    // Where the time went: the page's script loaded, the document parsed,
    // each answer of the sessions list (index.html preloads it and the app
    // takes that answer: a second one means the preload went unused).
    const parts = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const res = performance.getEntriesByType("resource");
      const script = res.find((r) => /\/assets\/index-.*\.js$/.test(r.name));
      const lists = res.filter((r) => r.name.includes("/api/sessions")).map((r) => Math.round(r.responseEnd));
      // The app's own marks: the list parsed, the rows committed to the DOM (the first time each).
      const mark = (name) => Math.round(performance.getEntriesByName(name)[0]?.startTime ?? 0);
      return {
        script: Math.round(script ? script.responseEnd : 0),
        dom: Math.round(nav.domContentLoadedEventEnd),
        load: Math.round(nav.loadEventEnd),
        lists,
        parsed: mark("clauderon:list"),
        first: mark("clauderon:first-rows"),
        committed: mark("clauderon:rows"),
      };
    });
    navigation.push({ screen, total, ...parts });
    await page.close();
  }

  const page = await context.newPage();
  await page.goto(`${env("BASE")}/`);
  await page.locator("table.sessions tbody tr").nth(rows - 1).waitFor({ timeout: 30_000 });
  const event = await page.evaluate(
    async ({ id, name, times }) => {
      const pill = () => document.querySelector(`tr[data-session="${name}"] [data-field="access-mode"]`)?.textContent;
      const out = [];
      let mode = pill();
      for (let i = 0; i < times; i++) {
        mode = mode === "read-only" ? "read-write" : "read-only";
        const want = mode;
        const before = pill();
        // Shown: the first frame after the list's DOM holds the new mode.
        const shown = new Promise((resolve, reject) => {
          const seen = new MutationObserver(() => {
            if (pill() !== want) return;
            seen.disconnect();
            clearTimeout(late);
            requestAnimationFrame(() => resolve(performance.now()));
          });
          seen.observe(document.querySelector("table.sessions"), { subtree: true, childList: true, characterData: true });
          const late = setTimeout(() => {
            seen.disconnect();
            reject(new Error(`change ${i} (to ${want}) not shown within 10 s; the row showed ${before}, shows ${pill()}; log ${JSON.stringify(window.__log || [])}`));
          }, 10_000);
        });
        const started = performance.now();
        const resp = await fetch(`/api/sessions/${id}/access-mode`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ mode }),
        });
        const answered = performance.now();
        if (!resp.ok) throw new Error(`access mode: ${resp.status} ${await resp.text()}`);
        out.push({ total: (await shown) - started, api: answered - started });
      }
      return out;
    },
    { id: env("SESSION"), name: env("SESSION_NAME"), times: Number(env("EVENTS")) },
  );
  step("figures", { rows, navigation_ms: navigation, event_ms: event });
});
