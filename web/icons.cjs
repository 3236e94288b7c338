// Renders the PWA's PNG icons from public/icon.svg and public/icon-maskable.svg
// in Debian's Chromium (run by hand after changing an SVG:
// `NODE_PATH=~/.cache/clauderon/tools/npm/node_modules node web/icons.cjs`;
// the PNGs are committed).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const icons = [
  ["icon.svg", 192, "icon-192.png"],
  ["icon.svg", 512, "icon-512.png"],
  ["icon-maskable.svg", 512, "icon-maskable-512.png"],
];

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium" });
  const page = await browser.newPage();
  const dir = path.join(__dirname, "public");
  for (const [source, size, out] of icons) {
    const svg = fs.readFileSync(path.join(dir, source), "utf8").replace("<svg ", `<svg width="${size}" height="${size}" `);
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(`<html><body style="margin:0;background:transparent">${svg}</body></html>`);
    await page.screenshot({ path: path.join(dir, out), omitBackground: true });
  }
  await browser.close();
})();
