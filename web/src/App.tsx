// The dashboard's shell: one page per route.
import { SessionPage } from "./pages/Session";
import { SessionsPage } from "./pages/Sessions";
import { useRoute } from "./route";

export function App() {
  const route = useRoute();
  return route.page === "session" ? <SessionPage key={route.name} name={route.name} /> : <SessionsPage />;
}
