// One session: its state and controls (access mode; stop, start, archive,
// delete, each confirmed), and tabs for the chat (the agent's transcript,
// following live, and a composer that types into the agent's terminal), the
// terminal itself, the proxy's audit of its requests (live, blocked ones
// marked with the reason) and its details.
import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import {
  answerApproval,
  ApiError,
  deleteSession,
  getAudit,
  getHistory,
  getOutput,
  getSession,
  sendInput,
  setAccessMode,
  transition,
  type Answer,
  type AuditRecord,
  type Message,
  type Session,
} from "../api/client";
import { follow } from "../api/events";
import { Markdown } from "../components/Markdown";
import { Header, SignedOut } from "../components/Header";
import { ago, agentLabel, statusLabel } from "../format";
import { navigate } from "../route";

type Tab = "chat" | "terminal" | "audit" | "details";

const Console = lazy(() => import("../components/Console"));

export function SessionPage({ name }: { name: string }) {
  const [session, setSession] = useState<Session | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [live, setLive] = useState<boolean | null>(null);
  const [tab, setTab] = useState<Tab>("chat");
  const [audit, setAudit] = useState<AuditRecord[]>([]);
  const [busy, setBusy] = useState(false);
  const lastAudit = useRef(0);

  const reload = useCallback(async () => {
    try {
      setSession(await getSession(name));
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, String(e)));
    }
  }, [name]);

  const loadAudit = useCallback(async (id: string) => {
    try {
      const page = await getAudit(id, lastAudit.current);
      if (page.records.length) {
        lastAudit.current = page.last_seq;
        setAudit((all) => [...all, ...page.records].slice(-2000));
      }
    } catch {
      // shown by the session's own errors
    }
  }, []);

  useEffect(() => {
    void reload();
  }, [reload]);

  const id = session?.id;
  useEffect(() => {
    if (!id) return;
    void loadAudit(id);
    return follow({
      connected(up) {
        setLive(up);
        if (up) {
          void reload();
          void loadAudit(id);
        }
      },
      event(e) {
        if (e.session_id !== id) return;
        if (e.type === "deleted") {
          setNotice("This session was deleted.");
          return;
        }
        void reload();
      },
      audit(r) {
        if (r.session_id !== id) return;
        // A record `loadAudit` already fetched (after a reconnect) is not shown twice.
        const seq = r.seq ?? 0;
        if (seq > 0 && seq <= lastAudit.current) return;
        if (seq > 0) lastAudit.current = seq;
        setAudit((all) => [...all, r].slice(-2000));
      },
    });
  }, [id, reload, loadAudit]);

  if (error?.unauthorized) return <SignedOut />;

  const act = async (what: string, run: () => Promise<unknown>, confirmText?: string) => {
    if (confirmText && !window.confirm(confirmText)) return;
    setBusy(true);
    setNotice(null);
    try {
      await run();
      await reload();
    } catch (e) {
      setNotice(`${what}: ${e instanceof ApiError ? e.message : String(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="page">
      <Header live={live} />
      {error && !error.unauthorized && (
        <div className="banner error" role="alert">
          {error.status === 404 ? `There is no session called ${name}.` : error.message}
        </div>
      )}
      {notice && (
        <div className="banner error" role="alert">
          {notice}
        </div>
      )}
      {session && (
        <>
          <section className="session-head">
            <h2>{session.name}</h2>
            <span className={`pill status-${session.status}`} data-field="status">
              {statusLabel(session.status)}
            </span>
            <span className={`pill agent-${session.agent_status}`} data-field="agent-status">
              {agentLabel(session.agent_status)}
            </span>
            <span className="meta">
              {session.agent}
              {session.model ? ` (${session.model})` : ""} on {session.backend} · {session.branch} · created{" "}
              {((a) => (a === "just now" ? a : `${a} ago`))(ago(session.created_at, Date.now()))}
            </span>
          </section>
          <section className="controls">
            <label className="toggle">
              <input
                type="checkbox"
                name="read-write"
                checked={session.access_mode === "read-write"}
                disabled={busy}
                onChange={(e) =>
                  act("Changing the access mode", () =>
                    setAccessMode(session.id, e.target.checked ? "read-write" : "read-only"),
                  )
                }
              />{" "}
              Writes allowed <span className={`pill mode-${session.access_mode}`} data-field="access-mode">{session.access_mode}</span>
            </label>
            <span className="spacer" />
            {session.status === "running" && (
              <button disabled={busy} onClick={() => act("Stopping", () => transition(session.id, "stop"), `Stop ${session.name}?`)}>
                Stop
              </button>
            )}
            {session.status === "stopped" && (
              <button disabled={busy} onClick={() => act("Starting", () => transition(session.id, "start"))}>
                Start
              </button>
            )}
            {session.status === "archived" ? (
              <button disabled={busy} onClick={() => act("Unarchiving", () => transition(session.id, "unarchive"))}>
                Unarchive
              </button>
            ) : (
              <button
                disabled={busy}
                onClick={() => act("Archiving", () => transition(session.id, "archive"), `Archive ${session.name}? It stops and leaves the list.`)}
              >
                Archive
              </button>
            )}
            <button
              className="danger"
              disabled={busy}
              onClick={() =>
                act(
                  "Deleting",
                  async () => {
                    await deleteSession(session.id);
                    navigate("/");
                  },
                  `Delete ${session.name}: its backend resource, worktree and branch (a branch with commits of its own is kept)?`,
                )
              }
            >
              Delete
            </button>
          </section>
          {session.error && (
            <div className="banner error" role="alert">
              {session.error}
            </div>
          )}
          {session.status === "running" && session.agent_status === "waiting-for-approval" && (
            <Approval id={session.id} agent={session.agent} />
          )}
          <nav className="tabs" role="tablist" aria-label="Session views">
            {(["chat", "terminal", "audit", "details"] as Tab[]).map((t) => (
              <button key={t} role="tab" aria-selected={tab === t} className={tab === t ? "tab active" : "tab"} onClick={() => setTab(t)}>
                {t === "chat" ? "Chat" : t === "terminal" ? "Terminal" : t === "audit" ? `Audit (${audit.length})` : "Details"}
              </button>
            ))}
          </nav>
          {tab === "chat" && (
            <>
              <Chat id={session.id} />
              <Composer id={session.id} running={session.status === "running"} />
            </>
          )}
          {tab === "terminal" && (
            <Suspense fallback={<p className="empty">Loading the terminal…</p>}>
              <Console id={session.id} />
            </Suspense>
          )}
          {tab === "audit" && <Audit records={audit} />}
          {tab === "details" && <Details session={session} />}
        </>
      )}
    </main>
  );
}

/** The chat, read from the agent's transcript a cursor at a time, every second. */
function Chat({ id }: { id: string }) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [note, setNote] = useState<string | null>(null);
  const cursor = useRef(0);
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const poll = async () => {
      try {
        const h = await getHistory(id, cursor.current);
        cursor.current = h.cursor;
        if (h.messages.length) setMessages((all) => [...all, ...h.messages]);
        setNote(h.transcript ? null : "The agent has not written a transcript yet.");
      } catch (e) {
        setNote(e instanceof ApiError ? e.message : String(e));
      }
      if (!stopped) timer = window.setTimeout(poll, 1000);
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [id]);
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // Braces: Chromium's scrollIntoView returns a promise, which React would take for a cleanup.
    void end.current?.scrollIntoView({ block: "end" });
  }, [messages.length]);
  return (
    <section className="chat" aria-label="Chat">
      {note && <p className="empty">{note}</p>}
      {messages.map((m, i) =>
        m.role === "tool-use" || m.role === "tool-result" ? (
          <details key={i} className={`message ${m.role}`}>
            <summary>
              {m.role === "tool-use" ? "Tool" : "Result"}
              {m.tool_name ? `: ${m.tool_name}` : ""}
            </summary>
            <pre>{m.text}</pre>
          </details>
        ) : (
          <article key={i} className={`message ${m.role}`} data-role={m.role}>
            <header>{m.role}</header>
            <Markdown text={m.text} />
          </article>
        ),
      )}
      <div ref={end} />
    </section>
  );
}

/**
 * The agent waits for permission: what its terminal shows (the question), and
 * approve / deny, which type the agent's own keys. Shown while the session's
 * agent status is waiting-for-approval; it goes when the agent moves on.
 */
function Approval({ id, agent }: { id: string; agent: string }) {
  const [screen, setScreen] = useState<string | null>(null);
  const [sending, setSending] = useState<Answer | null>(null);
  // The question is at the bottom of the screen: keep it in view.
  const bottom = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (bottom.current) bottom.current.scrollTop = bottom.current.scrollHeight;
  }, [screen]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // The question may be drawn a moment after the status says so: refresh
    // the screen while the banner is up.
    let gone = false;
    const look = () =>
      getOutput(id, 30).then(
        (o) => !gone && setScreen(o.output.replace(/\s+$/, "")),
        () => !gone && setScreen(null),
      );
    void look();
    const timer = window.setInterval(look, 2000);
    return () => {
      gone = true;
      window.clearInterval(timer);
    };
  }, [id]);
  const answer = async (what: Answer) => {
    setSending(what);
    setError(null);
    try {
      await answerApproval(id, what);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
      setSending(null);
    }
  };
  return (
    <section className="approval" role="alertdialog" aria-labelledby="approval-title">
      <h3 id="approval-title">{agent} asks for your permission</h3>
      {screen && (
        <pre className="approval-screen" ref={bottom} tabIndex={0} aria-label="What the agent's terminal asks">
          {screen}
        </pre>
      )}
      <div className="actions">
        <button className="primary" disabled={sending !== null} onClick={() => void answer("approve")}>
          {sending === "approve" ? "Approving…" : "Approve"}
        </button>
        <button className="danger" disabled={sending !== null} onClick={() => void answer("deny")}>
          {sending === "deny" ? "Denying…" : "Deny"}
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

/** Type a message to the agent (into its terminal, then Enter). */
function Composer({ id, running }: { id: string; running: boolean }) {
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const send = async (e?: React.FormEvent) => {
    e?.preventDefault();
    if (!text.trim() || sending) return;
    setSending(true);
    setError(null);
    try {
      await sendInput(id, text, true);
      setText("");
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setSending(false);
    }
  };
  return (
    <form className="composer" onSubmit={send}>
      <textarea
        name="message"
        rows={2}
        placeholder={running ? "Message the agent (Ctrl+Enter sends)" : "The session is not running"}
        disabled={!running || sending}
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void send();
        }}
      />
      <button type="submit" className="primary" disabled={!running || sending || !text.trim()}>
        {sending ? "Sending…" : "Send"}
      </button>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function Audit({ records }: { records: AuditRecord[] }) {
  if (!records.length) return <p className="empty">No requests through the proxy yet.</p>;
  return (
    <table className="audit">
      <thead>
        <tr>
          <th>When</th>
          <th>Request</th>
          <th>Decision</th>
          <th>Status</th>
          <th>Credential</th>
          <th>Reason</th>
        </tr>
      </thead>
      <tbody>
        {[...records].reverse().map((r, i) => (
          <tr key={`${r.seq ?? 0}-${r.at_ms}-${i}`} className={`decision-${r.decision}`} data-decision={r.decision}>
            <td title={new Date(r.at_ms).toLocaleString()}>{new Date(r.at_ms).toLocaleTimeString()}</td>
            <td className="request">
              {r.method} {r.host}
              {r.path}
            </td>
            <td>{r.decision}</td>
            <td>{r.status ?? ""}</td>
            <td>{r.credential ?? ""}</td>
            <td>{r.reason ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Details({ session }: { session: Session }) {
  const hosts = session.egress?.hosts ?? [];
  const rows: [string, string][] = [
    ["Repository", session.repo],
    ["Worktree", session.worktree],
    ["Branch", `${session.branch} (from ${session.base_commit.slice(0, 12)})`],
    ["Backend", session.backend],
    ["Agent", `${session.agent}${session.model ? ` (${session.model})` : ""}`],
    ["Isolation", session.isolation ? JSON.stringify(session.isolation) : "—"],
    ["Egress", `${session.egress?.mode ?? "allow-list"}${hosts.length ? `: ${hosts.join(", ")}` : ""}`],
    ["Plan mode", session.plan_mode ? "yes" : "no"],
    ["Skip permissions", session.skip_permissions ? "yes" : "no"],
    ["Prompt", session.prompt],
  ];
  return (
    <dl className="details">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
