// The credentials the proxy can inject into sessions' requests: for each
// service, whether a source has it, which one, and its masked form (the
// value itself never leaves the daemon's credential sources).
import { getCredentials } from "../api/client";
import { useLoad } from "../api/useLoad";
import { Header, SignedOut } from "../components/Header";
import { Problem } from "./System";

export function CredentialsPage() {
  const { data, error, reload } = useLoad(getCredentials);
  if (error?.unauthorized) return <SignedOut />;
  return (
    <main className="page">
      <Header live={null} />
      <div className="toolbar">
        <h2>Credentials</h2>
        <button onClick={reload}>Refresh</button>
      </div>
      <p className="empty">
        Sessions hold placeholders only: the proxy puts the real value into each request to the service's hosts. Sources
        are asked in this order: {data ? data.sources.join(", ") : "…"}.
      </p>
      <Problem error={error} />
      {data && (
        <table className="credentials">
          <thead>
            <tr>
              <th>Service</th>
              <th>Available</th>
              <th>Source</th>
              <th>Value</th>
            </tr>
          </thead>
          <tbody>
            {data.services.map((c) => (
              <tr key={c.service} data-service={c.service}>
                <td>{c.service}</td>
                <td className={c.available ? "ok" : "bad"}>{c.available ? "yes" : "no"}</td>
                <td>{c.source ?? "—"}</td>
                <td>
                  <code>{c.masked ?? ""}</code>
                  {(c.errors ?? []).map((e) => (
                    <div key={e} className="bad">
                      {e}
                    </div>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
