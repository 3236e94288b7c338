// The sessions table: one row per session with every column of the list,
// headings that sort (aria-sort says how), the keyboard's selected row, and a
// checkbox per row for the bulk actions (the heading's box picks every shown
// row). On a phone the rows become cards and the headings go; the page's sort
// menu stands in for them. A row renders again only when what it shows
// changed, so an event re-renders one row of a thousand, not all of them.
// A long list is drawn a screen first: the first rows are on screen before
// React builds the rest (in a transition, which yields to the user's input).
import { memo, startTransition, useEffect, useLayoutEffect, useState } from "react";
import type { Session } from "../api/client";
import { ago, agentLabel, statusLabel, when } from "../format";
import { navigate } from "../route";
import { COLUMNS, type Sort, type SortKey } from "../sessions";

export function SessionTable({
  sessions,
  selected,
  picked,
  sort,
  now,
  onSelect,
  onPick,
  onSort,
}: {
  sessions: Session[];
  /** Index of the keyboard's row. */
  selected: number;
  /** Ids of the rows ticked for a bulk action. */
  picked: ReadonlySet<string>;
  sort: Sort;
  now: number;
  onSelect: (index: number) => void;
  /** Tick (`true`) or untick the rows with these ids. */
  onPick: (ids: string[], on: boolean) => void;
  onSort: (key: SortKey) => void;
}) {
  const [whole, setWhole] = useState(sessions.length <= FIRST_ROWS);
  useEffect(() => {
    if (whole) return;
    // After the frame that draws the first rows, not before it.
    let timer: number | undefined;
    const frame = requestAnimationFrame(() => {
      timer = window.setTimeout(() => startTransition(() => setWhole(true)));
    });
    return () => {
      cancelAnimationFrame(frame);
      window.clearTimeout(timer);
    };
  }, [whole]);
  const rows = whole ? sessions : sessions.slice(0, FIRST_ROWS);
  // Marked for `just bench`: when rows are in the DOM (before layout and paint).
  useLayoutEffect(() => {
    performance.mark(whole ? "clauderon:rows" : "clauderon:first-rows");
  }, [whole]);
  const all = sessions.length > 0 && sessions.every((s) => picked.has(s.id));
  const some = !all && sessions.some((s) => picked.has(s.id));
  return (
    <table className="sessions">
      <thead>
        <tr>
          <th className="pick">
            <input
              type="checkbox"
              aria-label="Select every session shown"
              checked={all}
              ref={(el) => {
                if (el) el.indeterminate = some;
              }}
              onChange={(e) => onPick(sessions.map((s) => s.id), e.target.checked)}
            />
          </th>
          {COLUMNS.map((c) => (
            <th
              key={c.key}
              aria-sort={sort.key === c.key ? (sort.descending ? "descending" : "ascending") : undefined}
            >
              <button className="sort" onClick={() => onSort(c.key)} title={`Sort by ${c.label.toLowerCase()}`}>
                {c.label}
                <span aria-hidden="true" className="arrow">
                  {sort.key === c.key ? (sort.descending ? " ▼" : " ▲") : ""}
                </span>
              </button>
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((s, i) => (
          <SessionRow
            key={s.id}
            session={s}
            index={i}
            selected={i === selected}
            picked={picked.has(s.id)}
            now={now}
            onSelect={onSelect}
            onPick={onPick}
          />
        ))}
      </tbody>
    </table>
  );
}

/** Rows drawn before the rest of a long list: more than a screen shows. */
const FIRST_ROWS = 50;

type RowProps = {
  session: Session;
  index: number;
  selected: boolean;
  picked: boolean;
  now: number;
  onSelect: (index: number) => void;
  onPick: (ids: string[], on: boolean) => void;
};

/** Whether two rows' props show the same (a session's fields compared one by one). */
function sameRow(a: RowProps, b: RowProps): boolean {
  if (a.index !== b.index || a.selected !== b.selected || a.picked !== b.picked || a.now !== b.now) return false;
  if (a.onSelect !== b.onSelect || a.onPick !== b.onPick) return false;
  const x = a.session as Record<string, unknown>;
  const y = b.session as Record<string, unknown>;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k]);
}

const SessionRow = memo(function SessionRow({ session: s, index, selected, picked, now, onSelect, onPick }: RowProps) {
  return (
    <tr
      data-session={s.name}
      className={selected ? "selected" : undefined}
      aria-current={selected ? "true" : undefined}
      onClick={() => onSelect(index)}
    >
      <td className="pick">
        <input
          type="checkbox"
          aria-label={`Select ${s.name}`}
          checked={picked}
          onChange={(e) => onPick([s.id], e.target.checked)}
        />
      </td>
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
      <td title={when(s.created_at)} data-label="Age">
        {ago(s.created_at, now)}
      </td>
      <td title={when(s.updated_at)} data-label="Last activity">
        {ago(s.updated_at, now)}
      </td>
    </tr>
  );
}, sameRow);
