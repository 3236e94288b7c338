// The create dialog: every option `clauderon create` has that a person
// picks (repository — typed, from earlier sessions or browsed — prompt, backend, agent, model, access mode, plan mode,
// skip permissions, and a container's image, CPU and memory), the backends
// and agents this machine can run now (from the doctor), live progress while
// the session starts, and the API's own words when it cannot.
import { useEffect, useRef, useState } from "react";
import { ApiError, createSession, getDoctor, type AccessMode, type Doctor, type Session } from "../api/client";
import { follow, type Progress } from "../api/events";
import { DirectoryBrowser } from "./DirectoryBrowser";

interface Props {
  /** Repositories of earlier sessions, most recent first. */
  recent: string[];
  onClose(): void;
  onCreated(s: Session): void;
}

export function CreateDialog({ recent, onClose, onCreated }: Props) {
  const [doctor, setDoctor] = useState<Doctor | null>(null);
  const [repo, setRepo] = useState(recent[0] ?? "");
  const [browsing, setBrowsing] = useState(false);
  const [prompt, setPrompt] = useState("");
  const [name, setName] = useState("");
  const [backend, setBackend] = useState("");
  const [agent, setAgent] = useState("");
  const [model, setModel] = useState("");
  const [mode, setMode] = useState<AccessMode>("read-write");
  const [planMode, setPlanMode] = useState(false);
  const [skipPermissions, setSkipPermissions] = useState(false);
  const [image, setImage] = useState("");
  const [cpu, setCpu] = useState("");
  const [memory, setMemory] = useState("");
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<Progress[]>([]);
  const [error, setError] = useState<string | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);

  useEffect(() => {
    dialog.current?.showModal();
    getDoctor().then(
      (d) => {
        setDoctor(d);
        setBackend((b) => b || d.default_backend);
        setAgent((a) => a || d.default_agent);
      },
      () => setDoctor(null),
    );
  }, []);

  useEffect(() => (busy ? follow({ progress: (p) => setProgress((all) => [...all, p]) }) : undefined), [busy]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const memoryLimit = memory.trim() ? parseBytes(memory) : null;
    const cpuLimit = cpu.trim() ? Number(cpu) : null;
    if (Number.isNaN(memoryLimit) || Number.isNaN(cpuLimit)) {
      setError("CPUs is a number (e.g. 1.5) and memory a size (e.g. 4g, 512m).");
      return;
    }
    setError(null);
    setProgress([]);
    setBusy(true);
    try {
      const session = await createSession({
        repo: repo.trim(),
        prompt,
        name: name.trim() || null,
        backend: backend || null,
        agent: agent || null,
        model: model.trim() || null,
        access_mode: mode,
        plan_mode: planMode,
        skip_permissions: skipPermissions,
        image: image.trim() || null,
        cpu_limit: cpuLimit,
        memory_limit: memoryLimit,
        allow_hosts: [],
        print: false,
      });
      onCreated(session);
      onClose();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog ref={dialog} className="create" onClose={onClose} aria-label="New session">
      <form onSubmit={submit}>
        <h2>New session</h2>
        <div className="row repo-row">
          <label>
            Repository
            <input
              name="repo"
              required
              list="recent-repos"
              placeholder="/home/you/project (a directory in a git repository)"
              value={repo}
              onChange={(e) => setRepo(e.target.value)}
            />
            <datalist id="recent-repos">
              {recent.map((r) => (
                <option key={r} value={r} />
              ))}
            </datalist>
          </label>
          <button type="button" className="browse" aria-expanded={browsing} onClick={() => setBrowsing((b) => !b)}>
            Browse…
          </button>
        </div>
        {browsing && (
          <DirectoryBrowser
            start={repo.trim()}
            onPick={(p) => {
              setRepo(p);
              setBrowsing(false);
            }}
          />
        )}
        <label>
          Prompt
          <textarea name="prompt" required rows={4} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <div className="row">
          <ComponentSelect label="Backend" area="backend" doctor={doctor} value={backend} onChange={setBackend} />
          <ComponentSelect label="Agent" area="agent" doctor={doctor} value={agent} onChange={setAgent} />
          <label>
            Model
            <input name="model" placeholder="the agent's default" value={model} onChange={(e) => setModel(e.target.value)} />
          </label>
        </div>
        <NotReady doctor={doctor} backend={backend} agent={agent} />
        <div className="row">
          <label>
            Access
            <select name="access_mode" value={mode} onChange={(e) => setMode(e.target.value as AccessMode)}>
              <option value="read-write">read-write</option>
              <option value="read-only">read-only</option>
            </select>
          </label>
          <label>
            Name
            <input name="name" placeholder="from the prompt" value={name} onChange={(e) => setName(e.target.value)} />
          </label>
        </div>
        <div className="row checks">
          <label className="check">
            <input type="checkbox" checked={planMode} onChange={(e) => setPlanMode(e.target.checked)} /> Plan mode
          </label>
          <label className="check">
            <input type="checkbox" checked={skipPermissions} onChange={(e) => setSkipPermissions(e.target.checked)} />{" "}
            Skip permissions
          </label>
        </div>
        <details>
          <summary>Container settings</summary>
          <div className="row">
            <label>
              Image
              <input name="image" placeholder="the backend's default" value={image} onChange={(e) => setImage(e.target.value)} />
            </label>
            <label>
              CPUs
              <input name="cpu" inputMode="decimal" placeholder="e.g. 2" value={cpu} onChange={(e) => setCpu(e.target.value)} />
            </label>
            <label>
              Memory
              <input name="memory" placeholder="e.g. 4g" value={memory} onChange={(e) => setMemory(e.target.value)} />
            </label>
          </div>
        </details>
        {busy && (
          <div className="progress" role="status">
            <p>Starting the session…</p>
            <ul>
              {progress.map((p, i) => (
                <li key={i}>
                  {p.component}: {p.message}
                </li>
              ))}
            </ul>
          </div>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="button" onClick={() => dialog.current?.close()} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Creating…" : "Create"}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** A choice among the doctor's backends or agents, each marked when it cannot run here yet. */
function ComponentSelect(props: {
  label: string;
  area: "backend" | "agent";
  doctor: Doctor | null;
  value: string;
  onChange(value: string): void;
}) {
  return (
    <label>
      {props.label}
      <select name={props.area} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {props.doctor?.checks
          .filter((c) => c.area === props.area)
          .map((c) => (
            <option key={c.name} value={c.name} title={c.detail}>
              {c.name}
              {c.ok ? "" : " (not ready)"}
            </option>
          ))}
      </select>
    </label>
  );
}

/** What the doctor says about the chosen backend and agent, when they cannot work. */
function NotReady({ doctor, backend, agent }: { doctor: Doctor | null; backend: string; agent: string }) {
  const bad = doctor?.checks.filter(
    (c) => !c.ok && ((c.area === "backend" && c.name === backend) || (c.area === "agent" && c.name === agent)),
  );
  if (!bad?.length) return null;
  return (
    <ul className="not-ready">
      {bad.map((c) => (
        <li key={c.area + c.name}>
          {c.area} {c.name}: {c.detail}
          {c.fix ? (
            <>
              {" "}
              — fix: <code>{c.fix}</code>
            </>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

/** `4g`, `512m`, `1024k` or bytes. */
function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$/i.exec(text);
  if (!m) return Number.NaN;
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  return Math.round(Number(m[1]) * unit);
}
