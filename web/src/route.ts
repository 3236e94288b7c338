// The app's routes, in the address bar (the daemon answers every route with
// the app): `/` the sessions list, `/sessions/NAME` one session, and
// `/credentials`, `/plugins` and `/system`.
import { useEffect, useState } from "react";

/** The pages with a fixed address, in the header's order. */
export const PAGES = ["credentials", "plugins", "system"] as const;

export type Route = { page: "sessions" } | { page: "session"; name: string } | { page: (typeof PAGES)[number] };

function parse(path: string): Route {
  const m = /^\/sessions\/([^/]+)\/?$/.exec(path);
  if (m) return { page: "session", name: decodeURIComponent(m[1]) };
  const fixed = PAGES.find((p) => path.replace(/\/$/, "") === `/${p}`);
  return fixed ? { page: fixed } : { page: "sessions" };
}

/** Go to `path` without reloading. */
export function navigate(path: string) {
  if (location.pathname !== path) history.pushState(null, "", path);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

/** The current route, following the address bar. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.pathname));
  useEffect(() => {
    const onPop = () => setRoute(parse(location.pathname));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  return route;
}
