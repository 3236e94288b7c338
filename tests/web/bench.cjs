// The dashboard's figures (run by `just bench` from tests/bench/sessions.rs,
// against a real daemon holding 1,000 stored sessions), in Debian's Chromium:
// - navigation to a rendered list of every session: from the navigation's
//   start to the frame in which the table has all its rows (the page's own
//   clock), a fresh page each time;
// - event-to-screen latency: the page changes a session's access mode
//   through the API and times until the list shows the new mode — the API's
//   answer, the event over the WebSocket and React's render together.
// Prints one JSON line: {"navigation_ms": [...], "event_ms": [...], "rows": N}.
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
    await page.goto(`${env("BASE")}/`);
    const ms = await page.waitForFunction(
      (n) => (document.querySelectorAll("table.sessions tbody tr").length >= n ? performance.now() : false),
      rows,
      { polling: "raf", timeout: 30_000 },
    );
    navigation.push(await ms.jsonValue());
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
        // Shown: the first frame after the list's DOM holds the new mode.
        const shown = new Promise((resolve) => {
          const seen = new MutationObserver(() => {
            if (pill() !== want) return;
            seen.disconnect();
            requestAnimationFrame(() => resolve(performance.now()));
          });
          seen.observe(document.querySelector("table.sessions"), { subtree: true, childList: true, characterData: true });
        });
        const started = performance.now();
        const resp = await fetch(`/api/sessions/${id}/access-mode`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ mode }),
        });
        if (!resp.ok) throw new Error(`access mode: ${resp.status} ${await resp.text()}`);
        out.push((await shown) - started);
      }
      return out;
    },
    { id: env("SESSION"), name: env("SESSION_NAME"), times: Number(env("EVENTS")) },
  );
  step("figures", { rows, navigation_ms: navigation, event_ms: event });
});
