// The top bar: the product's name (home), the pages, the stream's state
// (with the offline banner while the daemon is away), and the signed-out
// notice every page shows the same way.
import { useNotificationPermission } from "../notify";
import { navigate } from "../route";

const NAV = [
  ["/", "Sessions"],
  ["/credentials", "Credentials"],
  ["/plugins", "Plugins"],
  ["/system", "System"],
] as const;

export function Header({ live, children }: { live: boolean | null; children?: React.ReactNode }) {
  return (
    <>
      <header className="header">
        <h1>
          <a
            href="/"
            onClick={(e) => {
              e.preventDefault();
              navigate("/");
            }}
          >
            clauderon
          </a>
        </h1>
        <nav className="nav" aria-label="Pages">
          {NAV.map(([path, label]) => (
            <a
              key={path}
              href={path}
              aria-current={location.pathname === path || (path === "/" && location.pathname.startsWith("/sessions/")) ? "page" : undefined}
              onClick={(e) => {
                e.preventDefault();
                navigate(path);
              }}
            >
              {label}
            </a>
          ))}
        </nav>
        <span className={`live ${live === null ? "" : live ? "up" : "down"}`} aria-live="polite">
          {live === null ? "" : live ? "live" : "offline"}
        </span>
        <span className="spacer" />
        <NotifyButton />
        {children}
      </header>
      {live === false && (
        <div className="banner offline" role="status">
          Offline: the daemon is not answering. Reconnecting…
        </div>
      )}
    </>
  );
}

/** Ask for notifications (once: the browser remembers the answer). */
function NotifyButton() {
  const [permission, ask] = useNotificationPermission();
  if (permission !== "default") return null;
  return (
    <button className="notify" title="A notification when a session's agent waits for you" onClick={ask}>
      Notify me
    </button>
  );
}

export function SignedOut() {
  return (
    <main className="page">
      <Header live={null} />
      <section className="notice" role="alert">
        <h2>Not signed in</h2>
        <p>
          This browser has no valid login. In a terminal on this machine, run <code>clauderon web</code>: it opens the
          dashboard signed in (or prints a one-time link to open).
        </p>
      </section>
    </main>
  );
}
