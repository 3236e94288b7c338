// What the dashboard's browser scripts share: Debian's Chromium launched
// headless through playwright-core (never a browser download), a report of
// named steps printed as JSON on the last line of stdout, page errors kept
// in it, a screenshot of every open page when a script fails, and the
// accessibility check (axe-core, from the dashboard's own npm packages).
"use strict";
const { chromium } = require("playwright-core");
const fs = require("node:fs");
const path = require("node:path");

/** The environment variable `name`, which must be set. */
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

/**
 * Run `scenario(context, step)` in a fresh browser context and print the
 * report; exit 1 when it throws.
 */
async function run(script, scenario) {
  const report = { steps: [] };
  const tag = path.basename(script, ".cjs");
  const step = (name, data = {}) => {
    report.steps.push({ name, ...data });
    process.stderr.write(`${tag}: ${name} ${JSON.stringify(data)}\n`);
  };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  let context;
  try {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // No page may subscribe to Web Push here: Chromium would ask Google's push
    // service, and tests reach nothing but this machine. (The daemon's side
    // of Web Push is tested against the mock's push service.)
    await context.addInitScript(() => {
      delete window.PushManager;
    });
    context.on("weberror", (e) => {
      report.pageErrors = [...(report.pageErrors || []), String(e.error())];
      process.stderr.write(`${tag}: page error ${e.error()}\n`);
    });
    await scenario(context, step);
    console.log(JSON.stringify(report));
  } catch (e) {
    for (const [i, p] of (context ? context.pages() : []).entries()) {
      await p.screenshot({ path: `${env("SHOTS")}/failed-${tag}-${i}.png`, fullPage: true }).catch(() => {});
    }
    console.log(JSON.stringify({ ...report, error: String(e && e.stack ? e.stack : e) }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js", { paths: [path.join(__dirname, "../../web")] }), "utf8");

/**
 * axe-core's check of what `page` shows now (WCAG 2.2 A and AA rules and
 * axe's best practices), recorded as the step `accessible: NAME`; throws
 * when a violation is serious or critical, naming each with its elements.
 * The script is evaluated through the DevTools protocol, which the page's
 * Content-Security-Policy does not govern, so the app's CSP stays as it is.
 */
async function accessible(page, step, name) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
      resultTypes: ["violations"],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  });
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  step(`accessible: ${name}`, { serious: serious.length, violations });
  if (serious.length) {
    throw new Error(`${name}: serious accessibility violations: ${JSON.stringify(serious, null, 1)}`);
  }
}

module.exports = { accessible, env, run };
