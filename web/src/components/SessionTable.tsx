// The sessions table: one row per session with every column of the list,
// headings that sort (aria-sort says how), the keyboard's selected row, and a
// checkbox per row for the bulk actions (the heading's box picks every shown
// row). On a phone the rows become cards and the headings go; the page's sort
// menu stands in for them.
import type { Session } from "../api/client";
import { ago, agentLabel, statusLabel } from "../format";
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
  const all = sessions.length > 0 && sessions.every((s) => picked.has(s.id));
  const some = !all && sessions.some((s) => picked.has(s.id));
  const open = (s: Session) => navigate(`/sessions/${encodeURIComponent(s.name)}`);
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
        {sessions.map((s, i) => (
          <tr
            key={s.id}
            data-session={s.name}
            className={i === selected ? "selected" : undefined}
            aria-current={i === selected ? "true" : undefined}
            onClick={() => onSelect(i)}
          >
            <td className="pick">
              <input
                type="checkbox"
                aria-label={`Select ${s.name}`}
                checked={picked.has(s.id)}
                onChange={(e) => onPick([s.id], e.target.checked)}
              />
            </td>
            <td className="name" data-label="Session">
              <a
                href={`/sessions/${encodeURIComponent(s.name)}`}
                onClick={(e) => {
                  e.preventDefault();
                  open(s);
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
            <td title={new Date(s.created_at).toLocaleString()} data-label="Age">
              {ago(s.created_at, now)}
            </td>
            <td title={new Date(s.updated_at).toLocaleString()} data-label="Last activity">
              {ago(s.updated_at, now)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
