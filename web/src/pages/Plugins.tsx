// The plugins the daemon has loaded, by kind, each with its version, where
// it came from and what it was granted (in words); and the components it
// refused, with why.
import { getPlugins, type Inventory } from "../api/client";
import { useLoad } from "../api/useLoad";
import { Header, SignedOut } from "../components/Header";
import { Problem } from "./System";

const KINDS = [
  ["backend", "Backends"],
  ["agent", "Agents"],
  ["credential-source", "Credential sources"],
  ["hook", "Hooks"],
] as const;

export function PluginsPage() {
  const { data, error, reload } = useLoad(getPlugins);
  if (error?.unauthorized) return <SignedOut />;
  return (
    <main className="page">
      <Header live={null} />
      <div className="toolbar">
        <h2>Plugins</h2>
        <button onClick={reload}>Refresh</button>
      </div>
      <Problem error={error} />
      {data && KINDS.map(([kind, title]) => <Kind key={kind} title={title} plugins={data.plugins.filter((p) => p.kind === kind)} />)}
      {data && data.refused.length > 0 && (
        <section>
          <h3>Refused</h3>
          <div className="cards">
            {data.refused.map((r) => (
              <article className="card" key={r.origin} data-refused={r.origin}>
                <h3>{r.origin}</h3>
                <p className="bad">{r.error}</p>
              </article>
            ))}
          </div>
        </section>
      )}
    </main>
  );
}

function Kind({ title, plugins }: { title: string; plugins: Inventory["plugins"] }) {
  if (plugins.length === 0) return null;
  return (
    <section>
      <h3>{title}</h3>
      <div className="cards">
        {plugins.map((p) => (
          <article className="card" key={`${p.kind}/${p.id}`} data-plugin={p.id}>
            <h3>
              {p.id} <span className="pill">{p.version}</span> <span className="pill">{p.source}</span>
            </h3>
            <p>{p.description}</p>
            {p.grants.length ? (
              <ul aria-label="Granted">
                {p.grants.map((g) => (
                  <li key={g}>{g}</li>
                ))}
              </ul>
            ) : (
              <p className="empty">No capabilities granted.</p>
            )}
            <p className="empty" title={p.origin}>
              {p.wasi ? "Imports WASI (runs with an empty WASI context). " : ""}From {p.origin}
            </p>
          </article>
        ))}
      </div>
    </section>
  );
}
