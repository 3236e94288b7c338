// The live event stream (`/api/events` over a WebSocket): session events,
// the proxy's audit records and progress lines. Reconnects with a growing
// pause (0.5 s up to 5 s) and replays the session events it missed with
// `?after=`.
import type { AuditRecord, SessionEvent } from "./client";

/** A progress line (an image pull, a worktree being made…). */
export interface Progress {
  component: string;
  message: string;
}

/** What the stream tells its listener. */
export interface StreamListener {
  /** A session event (replayed ones included), in order. */
  event?(e: SessionEvent): void;
  /** An audit record, as the proxy stores it (live only, never replayed). */
  audit?(r: AuditRecord): void;
  /** A progress line from a component at work. */
  progress?(p: Progress): void;
  /** Connected (`true`, after which the caller should reload what it shows) or lost (`false`). */
  connected?(up: boolean): void;
}

const SESSION_EVENTS = new Set([
  "created",
  "status-changed",
  "access-mode-changed",
  "egress-changed",
  "agent-status-changed",
  "deleted",
  "create-failed",
  "reconciled",
]);

/** The address of the daemon's WebSocket at `path` (same host, `wss` under https). */
export function socketUrl(path: string): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

/** Follow the event stream until the returned function is called: from the
 * event after `after` when given (the `seq` of a list just loaded, so nothing
 * between the list and the stream is missed), else from now. */
export function follow(listener: StreamListener, after?: number): () => void {
  let socket: WebSocket | null = null;
  let lastSeq = after;
  let pause = 500;
  let timer: number | undefined;
  let stopped = false;

  const open = () => {
    const ws = new WebSocket(socketUrl(`/api/events${lastSeq === undefined ? "" : `?after=${lastSeq}`}`));
    socket = ws;
    ws.onopen = () => {
      pause = 500;
      listener.connected?.(true);
    };
    ws.onmessage = (msg) => {
      let data: unknown;
      try {
        data = JSON.parse(String(msg.data));
      } catch {
        return;
      }
      const message = data as { type?: unknown; record?: AuditRecord; component?: string; message?: string };
      if (message?.type === "audit" && message.record) {
        listener.audit?.(message.record);
        return;
      }
      if (message?.type === "progress") {
        listener.progress?.({ component: String(message.component ?? ""), message: String(message.message ?? "") });
        return;
      }
      const e = data as SessionEvent;
      if (typeof e?.type === "string" && SESSION_EVENTS.has(e.type) && typeof e.seq === "number") {
        if (lastSeq === undefined || e.seq > lastSeq) lastSeq = e.seq;
        listener.event?.(e);
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      listener.connected?.(false);
      if (!stopped) {
        timer = window.setTimeout(open, pause);
        pause = Math.min(pause * 2, 5000);
      }
    };
  };
  open();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
    socket?.close();
  };
}
