// Creating and running sessions from the dashboard, in real Chromium
// (Debian's, driven by playwright-core) against the daemon and mock upstream
// tests/cli/web.rs set up. Steps, each recorded in the JSON report printed
// last on stdout:
// - the create dialog refuses a path outside any repository in the API's words;
// - `n` opens it; a shell session made through it (the repository picked in
//   its directory browser, from the home down; read-write, a script
//   that POSTs to api.github.com every half second) opens its page running;
// - its audit tab shows the POST allowed; turning writes off shows the next
//   POST blocked, with the reason;
// - a Claude Code session made through the dialog asks to run a command: its
//   page shows the question with Approve, the tab shows a notification, and
//   once approved the chat shows the mock model's answer;
// - a shell session that echoes each line it reads gets a line from the
//   chat's composer and one typed into the terminal tab (xterm.js over the
//   console WebSocket), and a second viewer's terminal shows both;
// - Delete (confirmed) removes a session and returns to the list;
// - screenshots of the session page at desktop and phone widths go to $SHOTS.
//
// Environment: BASE, LOGIN, REPO, BROWSE (REPO's path under the daemon's
// HOME), SHOTS, CHROMIUM (default /usr/bin/chromium).
"use strict";
const { accessible, env, run } = require("./browser.cjs");

async function create(page, fields) {
  await page.keyboard.press("n");
  const dialog = page.locator("dialog.create");
  await dialog.waitFor();
  // The doctor fills the backend and agent lists.
  await dialog.locator('select[name="agent"] option').first().waitFor({ state: "attached", timeout: 20_000 });
  if (fields.browse) {
    // Pick the repository in the directory browser, from the home down.
    await dialog.locator("button.browse").click();
    const browser = dialog.locator(".browser");
    await browser.locator('input[name="hidden"]').check();
    for (const dir of fields.browse) {
      await browser.locator(`button[data-dir="${dir}"]`).click();
      await browser.locator('[data-field="browse-path"]', { hasText: dir }).waitFor();
    }
    await browser.getByRole("button", { name: "Use this directory" }).click();
    await browser.waitFor({ state: "detached" });
  } else {
    await dialog.locator('input[name="repo"]').fill(fields.repo);
  }
  const repo = await dialog.locator('input[name="repo"]').inputValue();
  await dialog.locator('textarea[name="prompt"]').fill(fields.prompt);
  if (fields.name) await dialog.locator('input[name="name"]').fill(fields.name);
  await dialog.locator('select[name="backend"]').selectOption(fields.backend);
  await dialog.locator('select[name="agent"]').selectOption(fields.agent);
  await dialog.locator('button[type="submit"]').click();
  return { dialog, repo };
}

run(__filename, async (context, step) => {
  await context.grantPermissions(["notifications"], { origin: env("BASE") });
  const page = await context.newPage();
  page.on("dialog", (d) => d.accept());
  await page.goto(env("LOGIN"));
  await page.locator("table.sessions, p.empty").first().waitFor({ timeout: 10_000 });

  const { dialog } = await create(page, { repo: "/nonexistent/place", prompt: "x", backend: "zellij", agent: "shell" });
  const refusal = dialog.locator(".form-error");
  await refusal.waitFor({ timeout: 20_000 });
  step("refused repository", { text: await refusal.innerText() });
  await accessible(page, step, "create dialog");
  await dialog.locator("button", { hasText: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });

  const writer = `web-writer-${Date.now() % 100000}`;
  const script = "while true; do curl -s -o /dev/null -X POST -d '{}' https://api.github.com/user/repos; sleep 0.5; done";
  const browsed = await create(page, { browse: env("BROWSE").split("/"), prompt: script, name: writer, backend: "zellij", agent: "shell" });
  await page.waitForURL(`**/sessions/${writer}`, { timeout: 60_000 });
  await page.locator('.session-head [data-field="status"]', { hasText: "running" }).waitFor({ timeout: 30_000 });
  step("created through the dialog", { url: page.url(), repo: browsed.repo });

  await page.getByRole("tab", { name: /Audit/ }).click();
  const allowed = page.locator('table.audit tr[data-decision="allowed"]', { hasText: "POST api.github.com/user/repos" });
  await allowed.first().waitFor({ timeout: 30_000 });
  step("write allowed in the audit", { row: await allowed.first().innerText() });

  await page.locator('input[name="read-write"]').click();
  await page.locator('.controls [data-field="access-mode"]', { hasText: "read-only" }).waitFor({ timeout: 10_000 });
  const blocked = page.locator('table.audit tr[data-decision="blocked"]', { hasText: "POST api.github.com/user/repos" });
  await blocked.first().waitFor({ timeout: 30_000 });
  step("write blocked in the audit", { row: await blocked.first().innerText() });
  await accessible(page, step, "session audit");
  await page.screenshot({ path: `${env("SHOTS")}/session-audit-desktop.png`, fullPage: true });

  await page.goto(`${env("BASE")}/`);
  await page.locator("table.sessions").waitFor();
  const echo = `web-echo-${Date.now() % 100000}`;
  await create(page, {
    repo: env("REPO"),
    prompt: 'while read -r line; do echo "got:$line"; done',
    name: echo,
    backend: "zellij",
    agent: "shell",
  });
  await page.waitForURL(`**/sessions/${echo}`, { timeout: 60_000 });
  await page.locator('.session-head [data-field="status"]', { hasText: "running" }).waitFor({ timeout: 30_000 });
  await page.locator('.composer textarea[name="message"]').fill("from-composer");
  await page.locator(".composer button", { hasText: "Send" }).click();
  // Sent once the composer is empty again; refused once it shows the API's words.
  const composerRefusal = page.locator(".composer .form-error");
  await page.waitForFunction(
    () => document.querySelector('.composer textarea[name="message"]')?.value === "" || !!document.querySelector(".composer .form-error"),
    null,
    { timeout: 30_000 },
  );
  if (await composerRefusal.count()) throw new Error(`the composer's message was refused: ${await composerRefusal.innerText()}`);
  await page.getByRole("tab", { name: "Terminal" }).click();
  const screen = page.locator(".console-screen .xterm-rows");
  await page.locator('.console-screen[data-state="open"]').waitFor({ timeout: 20_000 });
  await screen.getByText("got:from-composer").first().waitFor({ timeout: 20_000 });
  await page.locator(".console-screen").click();
  await page.keyboard.type("from-terminal");
  await page.keyboard.press("Enter");
  await screen.getByText("got:from-terminal").first().waitFor({ timeout: 20_000 });
  const viewer = await context.newPage();
  await viewer.goto(`${env("BASE")}/sessions/${echo}`);
  await viewer.getByRole("tab", { name: "Terminal" }).click();
  const second = viewer.locator(".console-screen .xterm-rows");
  await second.getByText("got:from-terminal").first().waitFor({ timeout: 20_000 });
  step("typed through the composer and the terminal", {
    session: echo,
    first: await screen.innerText(),
    second: await second.innerText(),
  });
  await page.screenshot({ path: `${env("SHOTS")}/session-terminal-desktop.png` });
  await accessible(page, step, "session terminal");
  await viewer.close();

  await page.goto(`${env("BASE")}/`);
  await page.locator("table.sessions").waitFor();
  const talker = `web-claude-${Date.now() % 100000}`;
  await create(page, { repo: env("REPO"), prompt: "Run make test", name: talker, backend: "zellij", agent: "claude-code" });
  await page.waitForURL(`**/sessions/${talker}`, { timeout: 90_000 });
  // The mock model answers with a shell command, which Claude Code asks to run.
  const approval = page.locator("section.approval");
  const question = approval.locator(".approval-screen", { hasText: "make test" });
  await question.waitFor({ timeout: 90_000 });
  await page.screenshot({ path: `${env("SHOTS")}/session-approval-desktop.png` });
  await accessible(page, step, "approval banner");
  // The tab told the user too (notifications were allowed at the start).
  const notified = await page.waitForFunction(
    async (name) => {
      const registration = await navigator.serviceWorker.getRegistration();
      const shown = registration ? await registration.getNotifications() : [];
      return shown.map((n) => n.title).find((t) => t.startsWith(name)) || false;
    },
    talker,
    { timeout: 20_000 },
  );
  const asked = {
    title: await approval.locator("h3").innerText(),
    screen: await question.innerText(),
    notification: await notified.jsonValue(),
  };
  await approval.getByRole("button", { name: "Approve" }).click();
  await approval.waitFor({ state: "detached", timeout: 60_000 });
  step("approved from the banner", asked);
  const answer = page.locator('.chat article[data-role="assistant"]', { hasText: "Hello from the mock upstream" });
  await answer.first().waitFor({ timeout: 90_000 });
  step("chat shows the answer", {
    user: await page.locator('.chat article[data-role="user"]').first().innerText(),
    assistant: await answer.first().innerText(),
  });
  await page.setViewportSize({ width: 375, height: 740 });
  await page.screenshot({ path: `${env("SHOTS")}/session-chat-phone.png`, fullPage: true });
  step("phone width", { horizontalOverflow: await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) });
  await accessible(page, step, "session chat (phone)");
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.locator("button.danger", { hasText: "Delete" }).click();
  await page.waitForURL(`${env("BASE")}/`, { timeout: 60_000 });
  await page.locator(`tr[data-session="${talker}"]`).waitFor({ state: "detached", timeout: 20_000 });
  step("deleted from its page", { talker, writer });
});
