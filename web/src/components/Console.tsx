// The session's terminal: xterm.js over the console WebSocket
// (`/api/sessions/{id}/console`), which runs the backend's attach command on
// a pseudo-terminal the daemon holds. Fits its box and tells the daemon its
// size; 10,000 lines of scrollback. Loaded only when the tab is opened.
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { useEffect, useRef, useState } from "react";
import { socketUrl } from "../api/events";

type State = "connecting" | "open" | "closed";

export default function Console({ id }: { id: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<State>("connecting");
  const [reason, setReason] = useState("");
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    const term = new Terminal({
      scrollback: 10_000,
      cursorBlink: true,
      fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, monospace',
      fontSize: 13,
      theme: dark ? { background: "#0f1216" } : { background: "#ffffff", foreground: "#1b1f24", cursor: "#1b1f24" },
      // Programs in a terminal pick colours for a dark background (zellij's
      // white and orange were unreadable on the light theme): xterm.js
      // adjusts each colour until it reads against the background (WCAG AA).
      minimumContrastRatio: 4.5,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    fit.fit();
    setState("connecting");
    const ws = new WebSocket(
      socketUrl(`/api/sessions/${encodeURIComponent(id)}/console?cols=${term.cols}&rows=${term.rows}`),
    );
    ws.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    ws.onopen = () => {
      setState("open");
      term.focus();
    };
    ws.onmessage = (m) => {
      if (m.data instanceof ArrayBuffer) term.write(new Uint8Array(m.data));
    };
    ws.onclose = (e) => {
      setState("closed");
      setReason(e.reason || "the connection to the daemon closed");
    };
    const typed = term.onData((data) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
    });
    const binary = term.onBinary((data) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0)));
    });
    const resized = term.onResize(({ cols, rows }) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resize", cols, rows }));
    });
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(el);
    return () => {
      observer.disconnect();
      typed.dispose();
      binary.dispose();
      resized.dispose();
      ws.close();
      term.dispose();
    };
  }, [id, generation]);

  return (
    <section className="console" aria-label="Terminal">
      {state === "closed" && (
        <div className="banner offline" role="status">
          Terminal closed: {reason}.{" "}
          <button onClick={() => setGeneration((g) => g + 1)}>Reconnect</button>
        </div>
      )}
      <div ref={box} className="console-screen" data-state={state} />
    </section>
  );
}
