// The dashboard's shell: one page per route.
import { CredentialsPage } from "./pages/Credentials";
import { PluginsPage } from "./pages/Plugins";
import { SessionPage } from "./pages/Session";
import { SessionsPage } from "./pages/Sessions";
import { SystemPage } from "./pages/System";
import { useWaitingNotifications } from "./notify";
import { useRoute } from "./route";

export function App() {
  const route = useRoute();
  useWaitingNotifications();
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
