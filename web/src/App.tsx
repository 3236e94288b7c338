// The dashboard's shell: the header with the stream's state, and the page.
import { SessionsPage } from "./pages/Sessions";

export function App() {
  return <SessionsPage />;
}
