// The dashboard's shell: one page per route. Only the sessions list is in
// the first script; every other page (the session page brings markdown,
// code highlighting and the terminal) loads when it is first opened.
import { lazy, Suspense } from "react";
import { SessionsPage } from "./pages/Sessions";
import { useWaitingNotifications } from "./notify";
import { useRoute } from "./route";

const SessionPage = lazy(() => import("./pages/Session").then((m) => ({ default: m.SessionPage })));
const CredentialsPage = lazy(() => import("./pages/Credentials").then((m) => ({ default: m.CredentialsPage })));
const PluginsPage = lazy(() => import("./pages/Plugins").then((m) => ({ default: m.PluginsPage })));
const SystemPage = lazy(() => import("./pages/System").then((m) => ({ default: m.SystemPage })));

export function App() {
  const route = useRoute();
  useWaitingNotifications();
  return <Suspense fallback={<p className="empty">Loading…</p>}>{page(route)}</Suspense>;
}

function page(route: ReturnType<typeof useRoute>) {
  switch (route.page) {
    case "session":
      return <SessionPage key={route.name} name={route.name} />;
    case "credentials":
      return <CredentialsPage />;
    case "plugins":
      return <PluginsPage />;
    case "system":
      return <SystemPage />;
    default:
      return <SessionsPage />;
  }
}
