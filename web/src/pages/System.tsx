// The daemon itself: its version, uptime and file descriptors, what this
// machine can run now (the doctor: each backend, agent, the sandbox and the
// credentials, with why not and the fix), and the browsers subscribed to
// Web Push (subscribe this one; send a test notification).
import { useCallback, useState } from "react";
import { ApiError, getDoctor, getHealth, getPush, testPush } from "../api/client";
import { useLoad } from "../api/useLoad";
import { Header, SignedOut } from "../components/Header";
import { subscribeThisBrowser } from "../notify";

const AREAS = [
  ["backend", "Backends"],
  ["agent", "Agents"],
  ["sandbox", "Sandbox"],
  ["daemon", "Daemon"],
  ["credential", "Credentials"],
] as const;

/** An API error as a banner (nothing when there is none). */
export function Problem({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div className="banner error" role="alert">
      {error.message}
    </div>
  );
}

export function SystemPage() {
  const loadBoth = useCallback(() => Promise.all([getHealth(), getDoctor()]), []);
  const { data, error, reload } = useLoad(loadBoth);
  if (error?.unauthorized) return <SignedOut />;
  const [health, doctor] = data ?? [null, null];
  return (
    <main className="page">
      <Header live={null} />
      <div className="toolbar">
        <h2>System</h2>
        <button onClick={reload}>Check again</button>
      </div>
      <Problem error={error} />
      {health && (
        <dl className="facts">
          <dt>Version</dt>
          <dd data-field="version">{health.version}</dd>
          <dt>Up for</dt>
          <dd data-field="uptime">{duration(health.uptime_s)}</dd>
          <dt>File descriptors</dt>
          <dd>
            {health.fds.open} open of {health.fds.limit}
          </dd>
          {doctor && (
            <>
              <dt>Defaults</dt>
              <dd>
                {doctor.default_agent} on {doctor.default_backend} —{" "}
                <span className={doctor.ok ? "ok" : "bad"}>{doctor.ok ? "ready" : "not ready"}</span>
              </dd>
            </>
          )}
        </dl>
      )}
      {doctor &&
        AREAS.map(([area, title]) => {
          const checks = doctor.checks.filter((c) => c.area === area);
          if (checks.length === 0) return null;
          return (
            <section key={area}>
              <h3>{title}</h3>
              <div className="cards">
                {checks.map((c) => (
                  <article className="card" key={c.name} data-check={`${area}/${c.name}`} data-ok={c.ok}>
                    <h3>
                      <span className={c.ok ? "ok" : "bad"} aria-label={c.ok ? "works" : "does not work"}>
                        {c.ok ? "✓" : "✗"}
                      </span>
                      {c.name}
                      {c.required && <span className="pill">needed by the defaults</span>}
                    </h3>
                    <p>{c.detail}</p>
                    {c.fix && (
                      <p className="fix">
                        Fix: <code>{c.fix}</code>
                      </p>
                    )}
                  </article>
                ))}
              </div>
            </section>
          );
        })}
      <PushSection />
    </main>
  );
}

/** Web Push: who is subscribed, subscribe this browser, a test message. */
function PushSection() {
  const { data, error, reload } = useLoad(getPush);
  const [result, setResult] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const run = async (what: () => Promise<string[]>) => {
    setBusy(true);
    try {
      setResult(await what());
    } catch (e) {
      setResult([e instanceof Error ? e.message : String(e)]);
    } finally {
      setBusy(false);
      reload();
    }
  };
  return (
    <section className="push" aria-label="Notifications">
      <h3>Notifications (Web Push)</h3>
      <Problem error={error} />
      {data && (
        <p data-field="push-subscriptions">
          {data.subscriptions.length === 0
            ? "No browser is subscribed: notifications come only while a dashboard tab is open."
            : `${data.subscriptions.length} browser${data.subscriptions.length === 1 ? "" : "s"} subscribed: ${data.subscriptions.map((s) => s.origin).join(", ")}`}
        </p>
      )}
      <div className="actions">
        <button
          disabled={busy}
          onClick={() => run(async () => (await subscribeThisBrowser(), ["This browser is subscribed."]))}
        >
          Subscribe this browser
        </button>
        <button
          disabled={busy || !data || data.subscriptions.length === 0}
          onClick={() =>
            run(async () =>
              (await testPush()).deliveries.map(
                (d) =>
                  `${d.origin}: ${d.error ?? (d.removed ? "gone, forgotten" : `delivered (${d.status})`)}`,
              ),
            )
          }
        >
          Send a test notification
        </button>
      </div>
      {result.length > 0 && (
        <ul className="push-result" role="status">
          {result.map((r) => (
            <li key={r}>{r}</li>
          ))}
        </ul>
      )}
    </section>
  );
}

function duration(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
