// The create dialog's directory browser: the directories under the user's
// home, as the daemon lists them (`GET /api/directories`; directories only,
// git repositories marked, nothing outside the home), to pick a session's
// repository without typing its path.
import { useEffect, useState } from "react";
import { ApiError, listDirectories, type Listing } from "../api/client";

interface Props {
  /** Where to start: the repository field's path, or the home when empty. */
  start: string;
  onPick(path: string): void;
}

export function DirectoryBrowser({ start, onPick }: Props) {
  const [path, setPath] = useState(start);
  const [listing, setListing] = useState<Listing | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [hidden, setHidden] = useState(false);

  useEffect(() => {
    let gone = false;
    listDirectories(path, hidden).then(
      (l) => {
        if (gone) return;
        setListing(l);
        setError(null);
      },
      (e) => {
        if (gone) return;
        // A start that is not a directory under the home: begin at the home.
        if (path === start && start !== "") setPath("");
        else setError(e instanceof ApiError ? e.message : String(e));
      },
    );
    return () => {
      gone = true;
    };
  }, [path, start, hidden]);

  return (
    <div className="browser" role="group" aria-label="Choose a directory">
      <div className="browser-head">
        <button type="button" disabled={!listing?.parent} onClick={() => listing?.parent && setPath(listing.parent)}>
          ↑ Up
        </button>
        <code className="browser-path" data-field="browse-path">
          {listing?.path ?? path}
        </code>
        <button type="button" className={listing?.repository ? "primary" : ""} disabled={!listing} onClick={() => listing && onPick(listing.path)}>
          Use this directory
        </button>
        <label className="check">
          <input type="checkbox" name="hidden" checked={hidden} onChange={(e) => setHidden(e.target.checked)} /> hidden
        </label>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {listing && (
        <ul className="browser-list">
          {listing.entries.length === 0 && <li className="empty">No directories here.</li>}
          {listing.entries.map((d) => (
            <li key={d.path}>
              <button type="button" data-dir={d.name} onClick={() => setPath(d.path)} onDoubleClick={() => d.repository && onPick(d.path)}>
                📁 {d.name}
              </button>
              {d.repository && <span className="pill">git</span>}
            </li>
          ))}
          {listing.left_out > 0 && <li className="empty">…and {listing.left_out} more not shown.</li>}
        </ul>
      )}
    </div>
  );
}
