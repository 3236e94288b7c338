// The sessions page: every session, live from the event stream, with filter
// tabs, search, sort (the headings, or the menu on a phone), bulk archive and
// delete of the ticked rows, and keys (`/` search, `j`/`k` move, `x` tick,
// `Enter` open, `n` new, `?` help).
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, deleteSession, getSession, listSessions, transition, type Session, type SessionList } from "../api/client";
import { follow } from "../api/events";
import { CreateDialog } from "../components/CreateDialog";
import { Header, SignedOut } from "../components/Header";
import { SessionTable } from "../components/SessionTable";
import { navigate } from "../route";
import {
  apply,
  COLUMNS,
  loadSort,
  matches,
  merge,
  nextSort,
  saveSort,
  sortSessions,
  TABS,
  type Sort,
  type SortKey,
  type Tab,
} from "../sessions";

// The list when the app opens on it, asked for as the script runs (taking
// index.html's preloaded answer) rather than after React's first paint.
let earlyList: Promise<SessionList> | undefined = location.pathname === "/" ? listSessions() : undefined;
earlyList?.catch(() => undefined); // the page's reload reports a failure

function takeEarlyList(): Promise<SessionList> | undefined {
  const list = earlyList;
  earlyList = undefined;
  return list;
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
  const [sort, setSortState] = useState<Sort>(() => loadSort(localStorage));
  const [picked, setPicked] = useState<ReadonlySet<string>>(new Set());
  const search = useRef<HTMLInputElement>(null);

  /** Load the list; its `seq`, the last event it reflects (none if it failed). */
  const reload = useCallback(async (): Promise<number | undefined> => {
    try {
      const list = await (takeEarlyList() ?? listSessions());
      performance.mark("clauderon:list");
      setSessions((m) => merge(m, list.sessions, true));
      setError(null);
      return list.seq;
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, String(e)));
      return undefined;
    }
  }, []);

  const refresh = useCallback(async (id: string) => {
    try {
      const s = await getSession(id);
      setSessions((m) => merge(m, [s], false));
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
    // The list first (index.html preloads it while the script loads), then
    // the events after the last one it reflects: nothing falls between, and
    // the list is on screen without waiting for the stream. Each reconnect
    // loads it again; so does the first connect when the list had no `seq`.
    let stop: (() => void) | undefined;
    let cancelled = false;
    void reload().then((seq) => {
      if (cancelled) return;
      let fresh = seq !== undefined;
      stop = follow(
        {
          connected(up) {
            setLive(up);
            if (up && !fresh) void reload();
            fresh = false;
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
              return changed === s ? m : new Map(m).set(changed.id, changed);
            });
            if (!applied) void refresh(e.session_id);
          },
        },
        seq,
      );
    });
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [reload, refresh]);

  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 15_000);
    return () => window.clearInterval(t);
  }, []);

  const setSort = useCallback((next: Sort) => {
    setSortState(next);
    saveSort(localStorage, next);
  }, []);

  const shown = useMemo(() => {
    const keep = TABS.find((t) => t.id === tab)?.keep ?? (() => true);
    return sortSessions(
      [...sessions.values()].filter(keep).filter((s) => matches(s, query)),
      sort,
    );
  }, [sessions, tab, query, sort]);

  // A ticked session that has gone (deleted) or left the view is unticked:
  // a bulk action only ever acts on rows the user can see ticked.
  useEffect(() => {
    setPicked((p) => {
      const visible = new Set(shown.map((s) => s.id));
      const kept = [...p].filter((id) => visible.has(id));
      return kept.length === p.size ? p : new Set(kept);
    });
  }, [shown]);

  const pick = useCallback((ids: string[], on: boolean) => {
    setPicked((p) => {
      const next = new Set(p);
      for (const id of ids) {
        if (on) next.add(id);
        else next.delete(id);
      }
      return next;
    });
  }, []);

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
      } else if (ev.key === "x") {
        const s = shown[selected];
        if (s) pick([s.id], !picked.has(s.id));
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
  }, [shown, selected, creating, picked, pick]);

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
        <SortMenu sort={sort} onSort={setSort} />
      </div>
      {picked.size > 0 && (
        <BulkBar
          sessions={shown.filter((s) => picked.has(s.id))}
          onClear={() => setPicked(new Set())}
          onDone={() => void reload()}
        />
      )}
      {shown.length === 0 ? (
        <p className="empty">
          {sessions.size === 0
            ? "No sessions yet. Start one with: clauderon create --repo PATH --prompt \"…\""
            : "No session matches."}
        </p>
      ) : (
        <SessionTable
          sessions={shown}
          selected={selected}
          picked={picked}
          sort={sort}
          now={now}
          onSelect={setSelected}
          onPick={pick}
          onSort={(key) => setSort(nextSort(sort, key))}
        />
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
        <dt>x</dt>
        <dd>tick the selected session (for archive or delete)</dd>
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

/** The sort as a menu: the only way to sort on a phone, where the headings go. */
function SortMenu({ sort, onSort }: { sort: Sort; onSort: (s: Sort) => void }) {
  return (
    <label className="sort-menu">
      Sort{" "}
      <select
        aria-label="Sort sessions by"
        value={`${sort.key} ${sort.descending ? "desc" : "asc"}`}
        onChange={(e) => {
          const [key, dir] = e.target.value.split(" ");
          onSort({ key: key as SortKey, descending: dir === "desc" });
        }}
      >
        {COLUMNS.flatMap((c) => [
          <option key={`${c.key} asc`} value={`${c.key} asc`}>
            {c.label} ▲
          </option>,
          <option key={`${c.key} desc`} value={`${c.key} desc`}>
            {c.label} ▼
          </option>,
        ])}
      </select>
    </label>
  );
}

/**
 * The ticked sessions' actions: archive or delete them all, confirmed once,
 * one after the other with the count shown; a session the daemon refuses is
 * named with the API's words and stays ticked, the others go on.
 */
function BulkBar({ sessions, onClear, onDone }: { sessions: Session[]; onClear: () => void; onDone: () => void }) {
  const [progress, setProgress] = useState<string | null>(null);
  const [failures, setFailures] = useState<string[]>([]);
  const n = sessions.length;
  const plural = n === 1 ? "session" : "sessions";
  const run = async (verb: string, question: string, act: (s: Session) => Promise<unknown>) => {
    if (!window.confirm(question)) return;
    const failed: string[] = [];
    for (const [i, s] of sessions.entries()) {
      setProgress(`${verb} ${i + 1} of ${n}…`);
      try {
        await act(s);
      } catch (e) {
        failed.push(`${s.name}: ${e instanceof ApiError ? e.message : String(e)}`);
      }
    }
    setProgress(null);
    setFailures(failed);
    onDone();
  };
  const archivable = sessions.filter((s) => s.status !== "archived");
  return (
    <div className="bulk" role="region" aria-label="Ticked sessions">
      <span>
        {n} {plural} ticked
      </span>
      {progress ? (
        <span role="status">{progress}</span>
      ) : (
        <>
          <button
            disabled={archivable.length === 0}
            onClick={() =>
              run("Archiving", `Archive ${archivable.length} ${plural}? They stop and leave the list.`, (s) =>
                s.status === "archived" ? Promise.resolve() : transition(s.id, "archive"),
              )
            }
          >
            Archive
          </button>
          <button
            className="danger"
            onClick={() =>
              run(
                "Deleting",
                `Delete ${n} ${plural}: each one's backend resource, worktree and branch (a branch with commits of its own is kept)?`,
                (s) => deleteSession(s.id),
              )
            }
          >
            Delete
          </button>
          <button onClick={onClear}>Clear</button>
        </>
      )}
      {failures.length > 0 && (
        <ul className="failures" role="alert">
          {failures.map((f) => (
            <li key={f}>{f}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
