// The sessions page: every session, live from the event stream, with filter
// tabs, search and keys (`/` search, `j`/`k` move, `Enter` open, `n` new,
// `?` help).
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, getSession, listSessions, type Session, type SessionEvent } from "../api/client";
import { follow } from "../api/events";
import { CreateDialog } from "../components/CreateDialog";
import { Header, SignedOut } from "../components/Header";
import { ago, agentLabel, statusLabel } from "../format";
import { navigate } from "../route";

type Tab = "active" | "working" | "waiting" | "idle" | "stopped" | "archived";

const TABS: { id: Tab; label: string; keep: (s: Session) => boolean }[] = [
  { id: "active", label: "All", keep: (s) => s.status !== "archived" },
  { id: "working", label: "Working", keep: (s) => s.status === "running" && s.agent_status === "working" },
  {
    id: "waiting",
    label: "Waiting",
    keep: (s) =>
      s.status === "running" && (s.agent_status === "waiting-for-input" || s.agent_status === "waiting-for-approval"),
  },
  { id: "idle", label: "Idle", keep: (s) => s.status === "running" && s.agent_status === "idle" },
  { id: "stopped", label: "Stopped or failed", keep: (s) => s.status === "stopped" || s.status === "failed" },
  { id: "archived", label: "Archived", keep: (s) => s.status === "archived" },
];

/** A session with an event applied, when the event carries the change. */
function apply(s: Session, e: SessionEvent): Session | null {
  switch (e.type) {
    case "status-changed":
      return { ...s, status: e.to, updated_at: e.at };
    case "agent-status-changed":
      return { ...s, agent_status: e.to, updated_at: e.at };
    case "access-mode-changed":
      return { ...s, access_mode: e.to, updated_at: e.at };
    default:
      return null;
  }
}

export function SessionsPage() {
  const [sessions, setSessions] = useState<Map<string, Session>>(new Map());
  const [error, setError] = useState<ApiError | null>(null);
  const [live, setLive] = useState<boolean | null>(null);
  const [tab, setTab] = useState<Tab>("active");
  const [query, setQuery] = useState("");
  const [selected, setSelected] = useState(0);
  const [help, setHelp] = useState(false);
  const [creating, setCreating] = useState(false);
  const [now, setNow] = useState(Date.now());
  const search = useRef<HTMLInputElement>(null);

  const reload = useCallback(async () => {
    try {
      const all = await listSessions(true);
      setSessions(new Map(all.map((s) => [s.id, s])));
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, String(e)));
    }
  }, []);

  const refresh = useCallback(async (id: string) => {
    try {
      const s = await getSession(id);
      setSessions((m) => new Map(m).set(s.id, s));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        setSessions((m) => {
          const next = new Map(m);
          next.delete(id);
          return next;
        });
      }
    }
  }, []);

  useEffect(() => {
    void reload();
    return follow({
      connected(up) {
        setLive(up);
        if (up) void reload();
      },
      event(e) {
        if (e.type === "deleted") {
          setSessions((m) => {
            const next = new Map(m);
            next.delete(e.session_id);
            return next;
          });
          return;
        }
        let applied = false;
        setSessions((m) => {
          const s = m.get(e.session_id);
          const changed = s && apply(s, e);
          if (!changed) return m;
          applied = true;
          return new Map(m).set(changed.id, changed);
        });
        if (!applied) void refresh(e.session_id);
      },
    });
  }, [reload, refresh]);

  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 15_000);
    return () => window.clearInterval(t);
  }, []);

  const shown = useMemo(() => {
    const keep = TABS.find((t) => t.id === tab)?.keep ?? (() => true);
    const q = query.trim().toLowerCase();
    return [...sessions.values()]
      .filter(keep)
      .filter(
        (s) =>
          !q ||
          [s.name, s.repo, s.branch, s.backend, s.agent, s.model ?? "", s.prompt].some((f) =>
            f.toLowerCase().includes(q),
          ),
      )
      .sort((a, b) => b.updated_at - a.updated_at);
  }, [sessions, tab, query]);

  const recentRepos = useMemo(() => {
    const seen = new Map<string, number>();
    for (const s of sessions.values()) seen.set(s.repo, Math.max(seen.get(s.repo) ?? 0, s.created_at));
    return [...seen.entries()].sort((a, b) => b[1] - a[1]).map(([repo]) => repo);
  }, [sessions]);

  const counts = useMemo(() => {
    const all = [...sessions.values()];
    return Object.fromEntries(TABS.map((t) => [t.id, all.filter(t.keep).length])) as Record<Tab, number>;
  }, [sessions]);

  useEffect(() => {
    setSelected((i) => Math.max(0, Math.min(i, shown.length - 1)));
  }, [shown.length]);

  useEffect(() => {
    const onKey = (ev: KeyboardEvent) => {
      const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement;
      if (ev.key === "Escape") {
        setHelp(false);
        if (typing) (ev.target as HTMLElement).blur();
        return;
      }
      if (typing || creating || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.key === "/") {
        ev.preventDefault();
        search.current?.focus();
      } else if (ev.key === "j" || ev.key === "ArrowDown") {
        setSelected((i) => Math.min(i + 1, Math.max(shown.length - 1, 0)));
      } else if (ev.key === "k" || ev.key === "ArrowUp") {
        setSelected((i) => Math.max(i - 1, 0));
      } else if (ev.key === "n") {
        ev.preventDefault();
        setCreating(true);
      } else if (ev.key === "Enter") {
        const s = shown[selected];
        if (s) navigate(`/sessions/${encodeURIComponent(s.name)}`);
      } else if (ev.key === "?") {
        setHelp((h) => !h);
      } else if (/^[1-6]$/.test(ev.key)) {
        setTab(TABS[Number(ev.key) - 1].id);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [shown, selected, creating]);

  if (error?.unauthorized) return <SignedOut />;

  return (
    <main className="page">
      <Header live={live}>
        <button className="primary" onClick={() => setCreating(true)} title="New session (n)">
          New session
        </button>
      </Header>
      {error && !error.unauthorized && (
        <div className="banner error" role="alert">
          {error.message}
        </div>
      )}
      <div className="toolbar">
        <nav className="tabs" role="tablist" aria-label="Filter sessions">
          {TABS.map((t, i) => (
            <button
              key={t.id}
              role="tab"
              aria-selected={tab === t.id}
              className={tab === t.id ? "tab active" : "tab"}
              onClick={() => setTab(t.id)}
              title={`${t.label} (${i + 1})`}
            >
              {t.label} <span className="count">{counts[t.id]}</span>
            </button>
          ))}
        </nav>
        <input
          ref={search}
          className="search"
          type="search"
          placeholder="Search sessions ( / )"
          aria-label="Search sessions"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
      </div>
      {shown.length === 0 ? (
        <p className="empty">
          {sessions.size === 0
            ? "No sessions yet. Start one with: clauderon create --repo PATH --prompt \"…\""
            : "No session matches."}
        </p>
      ) : (
        <table className="sessions">
          <thead>
            <tr>
              <th>Session</th>
              <th>Repository</th>
              <th>Backend</th>
              <th>Agent</th>
              <th>State</th>
              <th>Agent state</th>
              <th>Access</th>
              <th>Age</th>
              <th>Last activity</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((s, i) => (
              <tr
                key={s.id}
                data-session={s.name}
                className={i === selected ? "selected" : undefined}
                aria-selected={i === selected}
                onClick={() => setSelected(i)}
              >
                <td className="name" data-label="Session">
                  <a
                    href={`/sessions/${encodeURIComponent(s.name)}`}
                    onClick={(e) => {
                      e.preventDefault();
                      navigate(`/sessions/${encodeURIComponent(s.name)}`);
                    }}
                  >
                    {s.name}
                  </a>
                </td>
                <td className="repo" title={s.repo} data-label="Repository">
                  {s.repo.split("/").filter(Boolean).pop() ?? s.repo}
                  <span className="branch">{s.branch}</span>
                </td>
                <td data-label="Backend">{s.backend}</td>
                <td data-label="Agent">
                  {s.agent}
                  {s.model ? <span className="model">{s.model}</span> : null}
                </td>
                <td data-label="State">
                  <span className={`pill status-${s.status}`} data-field="status">
                    {statusLabel(s.status)}
                  </span>
                </td>
                <td data-label="Agent state">
                  <span className={`pill agent-${s.agent_status}`} data-field="agent-status">
                    {agentLabel(s.agent_status)}
                  </span>
                </td>
                <td data-label="Access">
                  <span className={`pill mode-${s.access_mode}`} data-field="access-mode">
                    {s.access_mode}
                  </span>
                </td>
                <td title={new Date(s.created_at).toLocaleString()} data-label="Age">{ago(s.created_at, now)}</td>
                <td title={new Date(s.updated_at).toLocaleString()} data-label="Last activity">{ago(s.updated_at, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {help && <Help onClose={() => setHelp(false)} />}
      {creating && (
        <CreateDialog
          recent={recentRepos}
          onClose={() => setCreating(false)}
          onCreated={(s) => navigate(`/sessions/${encodeURIComponent(s.name)}`)}
        />
      )}
    </main>
  );
}

function Help({ onClose }: { onClose: () => void }) {
  return (
    <div className="help" role="dialog" aria-label="Keyboard shortcuts" onClick={onClose}>
      <dl>
        <dt>/</dt>
        <dd>search</dd>
        <dt>j / k, ↓ / ↑</dt>
        <dd>move</dd>
        <dt>1 – 6</dt>
        <dd>filter tabs</dd>
        <dt>n</dt>
        <dd>new session</dd>
        <dt>Enter</dt>
        <dd>open the selected session</dd>
        <dt>?</dt>
        <dd>this help</dd>
        <dt>Esc</dt>
        <dd>close, leave the search</dd>
      </dl>
    </div>
  );
}
