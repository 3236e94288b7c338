// How states and times read on screen.
import type { AgentStatus, Status } from "./api/client";

const STATUS: Record<Status, string> = {
  creating: "creating",
  running: "running",
  stopped: "stopped",
  archived: "archived",
  failed: "failed",
};

const AGENT: Record<AgentStatus, string> = {
  working: "working",
  "waiting-for-input": "waiting for input",
  "waiting-for-approval": "waiting for approval",
  idle: "idle",
  unknown: "—",
};

export const statusLabel = (s: Status) => STATUS[s] ?? s;
export const agentLabel = (s: AgentStatus) => AGENT[s] ?? s;

/** "just now", "5 min", "3 h", "2 d" since `ms`. */
export function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

// One formatter for every timestamp: making one per call (toLocaleString)
// cost ~0.1 s on a list of 1,000 sessions.
const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** `ms` as a local date and time, for a tooltip. */
export const when = (ms: number) => WHEN.format(ms);
