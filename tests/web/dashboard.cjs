// The web dashboard in real Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), against the daemon and sessions that tests/cli/web.rs
// set up. Steps, each recorded in the JSON report printed last on stdout:
// - without a login, the page says how to sign in (the API answers 401);
// - the one-time link signs in (an HttpOnly, SameSite=Strict cookie; the
//   page never holds the API token) and lands on the sessions list;
// - the list follows the daemon live, without a reload: an access-mode
//   change, new sessions, a deletion (made with the real CLI);
// - the headings sort the list (and say so to assistive technology);
// - two ticked sessions (a box, and `x` on the selected row) are archived
//   in bulk, then deleted in bulk from the Archived tab (every row ticked
//   from the heading's box);
// - axe-core finds no serious accessibility violation on any page;
// - the same link a second time is refused;
// - a hostile page on another port of 127.0.0.1 (the same *site*, so the
//   cookie would go with its requests) tries to archive the session and to
//   open the event stream; tests/cli/web.rs checks nothing happened;
// - the header leads to the credentials page (each service, masked; the
//   page holds no real value), the plugins page (each loaded plugin with its
//   grants) and the system page (version, uptime, what can run and why not);
// - the app is installable (Chromium's own check of the manifest and icons),
//   and its service worker opens the shell offline, saying so;
// - screenshots at desktop and phone widths go to $SHOTS.
//
// Environment: BASE (http://127.0.0.1:PORT), LOGIN (the link), SESSION (an
// existing session's name), CLAUDERON (the binary), CLAUDERON_HOME, REPO,
// SHOTS (a directory), CHROMIUM (default /usr/bin/chromium).
"use strict";
const { accessible, env, run } = require("./browser.cjs");
const { execFileSync } = require("node:child_process");
const http = require("node:http");

const BASE = env("BASE");

const cli = (...args) =>
  execFileSync(env("CLAUDERON"), args, { env: process.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const row = (page, name) => page.locator(`tr[data-session="${name}"]`);

run(__filename, async (context, step) => {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));

  await page.goto(`${BASE}/`);
  await page.getByText("Not signed in").waitFor({ timeout: 10_000 });
  step("signed-out page", { text: await page.locator("section.notice").innerText() });
  await accessible(page, step, "signed out");

  const login = await page.goto(env("LOGIN"));
  await row(page, env("SESSION")).waitFor({ timeout: 10_000 });
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === "clauderon_web");
  step("signed in", {
    url: page.url(),
    status: login && login.status(),
    cookie: cookie && { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, value: cookie.value },
    documentCookie: await page.evaluate(() => document.cookie),
    storage: await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })),
    html: await page.content(),
  });

  // Live: a marker on the window shows the page was never reloaded.
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
  const mode = row(page, env("SESSION")).locator('[data-field="access-mode"]');
  const before = await mode.innerText();
  cli("set-access-mode", env("SESSION"), "--mode", "read-write");
  await page.waitForFunction(
    (name) =>
      document.querySelector(`tr[data-session="${name}"] [data-field="access-mode"]`)?.textContent === "read-write",
    env("SESSION"),
    { timeout: 10_000 },
  );
  step("access mode followed live", { before, after: await mode.innerText() });

  const second = `web-live-${Date.now() % 100000}`;
  const [bulk1, bulk2] = [`web-bulk-${Date.now() % 100000}-1`, `web-bulk-${Date.now() % 100000}-2`];
  for (const name of [second, bulk1, bulk2]) cli("create", "-r", env("REPO"), "-a", "shell", "--name", name, "-p", "sleep 600");
  for (const name of [second, bulk1, bulk2]) await row(page, name).waitFor({ timeout: 20_000 });
  step("new session appeared live", { session: second, status: await row(page, second).locator('[data-field="status"]').innerText() });
  await accessible(page, step, "sessions");
  await page.keyboard.press("/");
  await page.keyboard.type(second);
  const matching = await page.locator("tbody tr").count();
  await page.keyboard.press("Escape");
  await page.fill("input.search", "");
  step("search", { query: second, rows: matching });
  await page.keyboard.press("Escape"); // out of the search box, where keys are text
  await page.keyboard.press("?");
  await page.getByRole("dialog", { name: "Keyboard shortcuts" }).waitFor();
  await accessible(page, step, "keyboard help");
  await page.keyboard.press("Escape");

  // Sort by name, both ways, from the heading.
  const names = () => page.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.session));
  const heading = page.getByRole("columnheader", { name: /^Session/ });
  await heading.getByRole("button").click();
  const ascending = { ariaSort: await heading.getAttribute("aria-sort"), names: await names() };
  await heading.getByRole("button").click();
  step("sorted by name", { ascending, descending: { ariaSort: await heading.getAttribute("aria-sort"), names: await names() } });

  // Bulk: tick one by its box and one with `x`, archive both, then delete
  // both from the Archived tab.
  page.once("dialog", (d) => d.accept());
  await row(page, bulk1).getByRole("checkbox").check();
  await row(page, bulk2).locator("td.repo").click();
  await page.keyboard.press("x");
  const bar = page.getByRole("region", { name: "Ticked sessions" });
  const ticked = await bar.locator("span").first().innerText();
  await bar.getByRole("button", { name: "Archive" }).click();
  for (const name of [bulk1, bulk2]) await row(page, name).waitFor({ state: "detached", timeout: 30_000 });
  step("bulk archived", { ticked, shown: await names() });
  await page.keyboard.press("6");
  for (const name of [bulk1, bulk2]) await row(page, name).waitFor({ timeout: 10_000 });
  await page.getByRole("checkbox", { name: "Select every session shown" }).check();
  const archivedTicked = await bar.locator("span").first().innerText();
  page.once("dialog", (d) => d.accept());
  await bar.getByRole("button", { name: "Delete" }).click();
  for (const name of [bulk1, bulk2]) await row(page, name).waitFor({ state: "detached", timeout: 30_000 });
  step("bulk deleted", { ticked: archivedTicked, names: [bulk1, bulk2], barGone: (await bar.count()) === 0 });
  await page.keyboard.press("1");
  await row(page, second).waitFor();

  await page.screenshot({ path: `${env("SHOTS")}/sessions-desktop.png`, fullPage: true });
  await page.setViewportSize({ width: 375, height: 740 });
  await page.screenshot({ path: `${env("SHOTS")}/sessions-phone.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  step("phone width", { horizontalOverflow: overflow });
  await page.setViewportSize({ width: 1280, height: 800 });

  cli("delete", second, "--force");
  await row(page, second).waitFor({ state: "detached", timeout: 20_000 });
  step("deleted session left live", { notReloaded: await page.evaluate(() => window.__notReloaded === true) });

  const again = await context.newPage();
  const reused = await again.goto(env("LOGIN"));
  step("link reused", { status: reused && reused.status(), text: await again.locator("body").innerText() });
  await again.close();

  // A hostile page on another port of this machine, opened in the
  // signed-in browser.
  const id = JSON.parse(cli("list", "--json")).find((s) => s.name === env("SESSION")).id;
  const hostile = http.createServer((req, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><body><img src="${BASE}/api/sessions"><script>
      const out = {};
      const done = (k, v) => { out[k] = v; document.title = JSON.stringify(out); };
      fetch("${BASE}/api/sessions/${id}/archive", { method: "POST", mode: "no-cors", credentials: "include" })
        .then((r) => done("archive", r.type), (e) => done("archive", "error " + e.message));
      fetch("${BASE}/api/sessions", { credentials: "include" })
        .then((r) => r.text()).then((t) => done("read", t), (e) => done("read", "error " + e.message));
      const ws = new WebSocket("${BASE.replace("http", "ws")}/api/events");
      ws.onmessage = (m) => done("ws", "message " + m.data);
      ws.onerror = () => done("ws", "error");
      ws.onopen = () => done("wsopen", true);
    </script></body>`);
  });
  await new Promise((r) => hostile.listen(0, "127.0.0.1", r));
  const evil = await context.newPage();
  await evil.goto(`http://127.0.0.1:${hostile.address().port}/`);
  await evil.waitForFunction(() => {
    try {
      const o = JSON.parse(document.title || "{}");
      return "archive" in o && "read" in o && "ws" in o;
    } catch {
      return false;
    }
  }, null, { timeout: 10_000 });
  step("hostile page", { id, result: JSON.parse(await evil.title()) });
  hostile.close();

  // The credentials, plugins and system pages, reached from the header.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${env("BASE")}/`);
  const nav = page.getByRole("navigation", { name: "Pages" });
  await nav.getByRole("link", { name: "Credentials" }).click();
  const github = page.locator('table.credentials tr[data-service="github"]');
  await github.waitFor({ timeout: 10_000 });
  step("credentials page", { url: page.url(), row: await github.innerText(), html: await page.content() });
  await accessible(page, step, "credentials");
  await page.screenshot({ path: `${env("SHOTS")}/credentials-desktop.png`, fullPage: true });
  await nav.getByRole("link", { name: "Plugins" }).click();
  const zellij = page.locator('[data-plugin="zellij"]');
  await zellij.waitFor({ timeout: 10_000 });
  step("plugins page", {
    zellij: await zellij.innerText(),
    claude: await page.locator('[data-plugin="claude-code"]').innerText(),
    count: await page.locator("[data-plugin]").count(),
  });
  await accessible(page, step, "plugins");
  await page.screenshot({ path: `${env("SHOTS")}/plugins-desktop.png`, fullPage: true });
  await nav.getByRole("link", { name: "System" }).click();
  const zellijCheck = page.locator('[data-check="backend/zellij"]');
  await zellijCheck.waitFor({ timeout: 30_000 });
  await page.setViewportSize({ width: 375, height: 740 });
  step("system page", {
    version: await page.locator('[data-field="version"]').innerText(),
    uptime: await page.locator('[data-field="uptime"]').innerText(),
    zellij: await zellijCheck.innerText(),
    zellijOk: await zellijCheck.getAttribute("data-ok"),
    horizontalOverflow: await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth),
  });
  await page.screenshot({ path: `${env("SHOTS")}/system-phone.png`, fullPage: true });
  await accessible(page, step, "system (phone)");

  // The installable app: its manifest and icons pass Chromium's own
  // installability check, and the service worker keeps the shell, which
  // opens offline saying the daemon is away.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${env("BASE")}/`);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await page.reload();
  await page.locator("table.sessions").waitFor({ timeout: 10_000 });
  const cdp = await context.newCDPSession(page);
  // The test's browser context is a private one, which Chromium never
  // installs into ("in-incognito"); every other reason is the app's.
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  const { errors: manifestErrors } = await cdp.send("Page.getAppManifest");
  const manifest = await page.evaluate(async () => {
    const r = await fetch("/manifest.webmanifest");
    return { type: r.headers.get("content-type"), body: await r.json() };
  });
  const notifyButton = await page.locator("button.notify").count();
  await context.setOffline(true);
  await page.reload();
  const offline = page.locator(".banner.offline");
  await offline.waitFor({ timeout: 20_000 });
  step("installable", {
    installabilityErrors: installabilityErrors.map((e) => e.errorId).filter((id) => id !== "in-incognito"),
    manifestErrors,
    manifest,
    notifyButton,
    controlled: await page.evaluate(() => !!navigator.serviceWorker.controller),
    offline: await offline.innerText(),
  });
  await context.setOffline(false);

  // A Web Push message, handed to the service worker as a push service
  // would (through the DevTools protocol: no push service runs here): the
  // worker shows the daemon's notification.
  await context.grantPermissions(["notifications"], { origin: BASE });
  await page.reload();
  const registrations = [];
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => registrations.push(...e.registrations));
  await cdp.send("ServiceWorker.enable");
  const deadline = Date.now() + 10_000;
  let registration;
  while (!(registration = registrations.find((r) => !r.isDeleted && r.scopeURL.startsWith(BASE))) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!registration) throw new Error(`no service worker registration: ${JSON.stringify(registrations)}`);
  const message = { title: "pushed-session is waiting for your approval", body: "Open the session in clauderon.", tag: "clauderon-pushed", url: "/sessions/pushed-session" };
  await cdp.send("ServiceWorker.deliverPushMessage", { origin: BASE, registrationId: registration.registrationId, data: JSON.stringify(message) });
  const shown = await page.waitForFunction(
    async (title) => {
      const r = await navigator.serviceWorker.getRegistration();
      const n = (r ? await r.getNotifications() : []).find((x) => x.title === title);
      return n ? { title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url } : false;
    },
    message.title,
    { timeout: 10_000 },
  );
  step("push shown", await shown.jsonValue());

  step("console errors", { errors: consoleErrors });
});
