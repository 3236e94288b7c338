// The dashboard's build: hashed assets under /assets (the daemon serves them
// cached for a year), index.html never cached. `npm run dev` proxies the API
// to a daemon on :3030. `npm test` runs the component tests (Vitest, in jsdom).
import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  server: { proxy: { "/api": { target: "http://127.0.0.1:3030", ws: true } } },
  // globals: Testing Library unmounts what a test rendered after each one.
  test: { environment: "jsdom", globals: true, include: ["src/**/*.test.{ts,tsx}"] },
});
