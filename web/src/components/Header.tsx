// The top bar: the product's name (home), the stream's state (with the
// offline banner while the daemon is away), and the signed-out notice every
// page shows the same way.
import { navigate } from "../route";

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
        <span className={`live ${live ? "up" : "down"}`} aria-live="polite">
          {live === null ? "" : live ? "live" : "offline"}
        </span>
        <span className="spacer" />
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
