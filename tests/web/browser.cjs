// What the dashboard's browser scripts share: Debian's Chromium launched
// headless through playwright-core (never a browser download), a report of
// named steps printed as JSON on the last line of stdout, page errors kept
// in it, and a screenshot of every open page when a script fails.
"use strict";
const { chromium } = require("playwright-core");
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

module.exports = { env, run };
