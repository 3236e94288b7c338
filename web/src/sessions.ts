// The sessions list's logic, kept apart from its page so that it can be unit
// tested: the filter tabs, how an event changes a session, search, and sort.
import type { Session, SessionEvent } from "./api/client";

export type Tab = "active" | "working" | "waiting" | "idle" | "stopped" | "archived";

/** The filter tabs, in the order of their keys (`1`–`6`). */
export const TABS: { id: Tab; label: string; keep: (s: Session) => boolean }[] = [
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

/**
 * A session with an event applied, when the event carries the change; the
 * session as it is when the event is older than what the page shows (a
 * replay after a reconnect, or news that crossed a fresher answer).
 */
export function apply(s: Session, e: SessionEvent): Session | null {
  if (e.at < s.updated_at && "to" in e) return s;
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

/**
 * `incoming` (answers of the API) over `current`: each session as the API
 * gave it, unless the page already shows a later state of it (an event that
 * arrived while the answer was on its way). With `whole`, `incoming` is the
 * whole list, and sessions it lacks are gone.
 */
export function merge(current: Map<string, Session>, incoming: Session[], whole: boolean): Map<string, Session> {
  const next = new Map(whole ? [] : current);
  for (const s of incoming) {
    const shown = current.get(s.id);
    next.set(s.id, shown && shown.updated_at > s.updated_at ? shown : s);
  }
  return next;
}

/** Whether `s` matches the search `query` (any of its words, case folded). */
export function matches(s: Session, query: string): boolean {
  const q = query.trim().toLowerCase();
  return (
    !q ||
    [s.name, s.repo, s.branch, s.backend, s.agent, s.model ?? "", s.prompt].some((f) => f.toLowerCase().includes(q))
  );
}

/** The columns the list can be sorted by, with their headings. */
export const COLUMNS = [
  { key: "name", label: "Session" },
  { key: "repo", label: "Repository" },
  { key: "backend", label: "Backend" },
  { key: "agent", label: "Agent" },
  { key: "status", label: "State" },
  { key: "agent_status", label: "Agent state" },
  { key: "access_mode", label: "Access" },
  { key: "created_at", label: "Age" },
  { key: "updated_at", label: "Last activity" },
] as const;

export type SortKey = (typeof COLUMNS)[number]["key"];
export type Sort = { key: SortKey; descending: boolean };

/** Most recently active first: the list's order until the user picks one. */
export const DEFAULT_SORT: Sort = { key: "updated_at", descending: true };

/**
 * The order of a click on column `key`: a new column sorts the way its
 * values read best (times newest first, the rest A to Z); the same column
 * again turns the order round.
 */
export function nextSort(current: Sort, key: SortKey): Sort {
  if (current.key === key) return { key, descending: !current.descending };
  return { key, descending: key === "updated_at" || key === "created_at" };
}

/**
 * `sessions` in `sort`'s order; ties (and equal names never happen) fall back
 * to the most recently active first, so the order is stable between renders.
 * Ages sort by creation time: the youngest session has the latest time.
 */
// One collator for every comparison: localeCompare with options builds one per call.
const COLLATOR = new Intl.Collator(undefined, { numeric: true });

export function sortSessions(sessions: Session[], sort: Sort): Session[] {
  const value = (s: Session) => s[sort.key] ?? "";
  const sign = sort.descending ? -1 : 1;
  return [...sessions].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const order =
      typeof x === "number" && typeof y === "number" ? x - y : COLLATOR.compare(String(x), String(y));
    return order !== 0 ? sign * order : b.updated_at - a.updated_at;
  });
}

/** The saved sort, or the default when none was saved (or it is unreadable). */
export function loadSort(storage: Pick<Storage, "getItem">): Sort {
  try {
    const saved = JSON.parse(storage.getItem("clauderon.sort") ?? "null") as Partial<Sort> | null;
    if (saved && COLUMNS.some((c) => c.key === saved.key) && typeof saved.descending === "boolean") {
      return { key: saved.key as SortKey, descending: saved.descending };
    }
  } catch {
    // not JSON: the default
  }
  return DEFAULT_SORT;
}

export function saveSort(storage: Pick<Storage, "setItem">, sort: Sort) {
  try {
    storage.setItem("clauderon.sort", JSON.stringify(sort));
  } catch {
    // storage full or refused (private mode): the sort lasts this visit
  }
}
