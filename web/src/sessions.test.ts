// The sessions list's logic: sort, search, events, the saved sort.
import { describe, expect, it } from "vitest";
import type { Session } from "./api/client";
import { ago } from "./format";
import { apply, DEFAULT_SORT, loadSort, matches, merge, nextSort, sortSessions, TABS } from "./sessions";

const session = (name: string, over: Partial<Session> = {}): Session =>
  ({
    id: `id-${name}`,
    name,
    repo: `/home/u/${name}-repo`,
    branch: `clauderon/${name}`,
    backend: "zellij",
    agent: "shell",
    model: null,
    prompt: "",
    status: "running",
    agent_status: "idle",
    access_mode: "read-only",
    created_at: 1_000,
    updated_at: 1_000,
    ...over,
  }) as Session;

const names = (l: Session[]) => l.map((s) => s.name);

describe("sortSessions", () => {
  const list = [
    session("s10", { updated_at: 3, created_at: 30, agent: "codex" }),
    session("s2", { updated_at: 1, created_at: 10, agent: "claude-code" }),
    session("a", { updated_at: 2, created_at: 20, agent: "codex" }),
  ];

  it("puts the most recently active first by default", () => {
    expect(names(sortSessions(list, DEFAULT_SORT))).toEqual(["s10", "a", "s2"]);
  });

  it("sorts names as people read numbers in them", () => {
    expect(names(sortSessions(list, { key: "name", descending: false }))).toEqual(["a", "s2", "s10"]);
    expect(names(sortSessions(list, { key: "name", descending: true }))).toEqual(["s10", "s2", "a"]);
  });

  it("breaks ties by the latest activity", () => {
    expect(names(sortSessions(list, { key: "agent", descending: false }))).toEqual(["s2", "s10", "a"]);
  });

  it("sorts ages by creation time", () => {
    expect(names(sortSessions(list, { key: "created_at", descending: true }))).toEqual(["s10", "a", "s2"]);
  });

  it("leaves its input alone", () => {
    sortSessions(list, { key: "name", descending: false });
    expect(names(list)).toEqual(["s10", "s2", "a"]);
  });
});

describe("nextSort", () => {
  it("turns the order round on the same column", () => {
    expect(nextSort({ key: "name", descending: false }, "name")).toEqual({ key: "name", descending: true });
  });
  it("starts a text column A to Z and a time column newest first", () => {
    expect(nextSort(DEFAULT_SORT, "repo")).toEqual({ key: "repo", descending: false });
    expect(nextSort(DEFAULT_SORT, "created_at")).toEqual({ key: "created_at", descending: true });
  });
});

describe("loadSort", () => {
  const storage = (value: string | null) => ({ getItem: () => value });
  it("reads a saved sort", () => {
    expect(loadSort(storage('{"key":"name","descending":false}'))).toEqual({ key: "name", descending: false });
  });
  it.each([null, "not json", '{"key":"prompt","descending":true}', '{"key":"name"}', "[]"])(
    "falls back to the default for %s",
    (v) => expect(loadSort(storage(v))).toEqual(DEFAULT_SORT),
  );
});

describe("matches", () => {
  const s = session("api-fix", { model: "opus", prompt: "Fix the LOGIN bug" });
  it("finds a session by any of its fields, case folded", () => {
    expect(matches(s, "login")).toBe(true);
    expect(matches(s, "OPUS")).toBe(true);
    expect(matches(s, "  api-fix ")).toBe(true);
    expect(matches(s, "")).toBe(true);
    expect(matches(s, "docker")).toBe(false);
  });
});

describe("apply and the tabs", () => {
  it("moves a session between tabs as its events arrive", () => {
    const s = session("w");
    const waiting = apply(s, { type: "agent-status-changed", session_id: s.id, from: "idle", to: "waiting-for-approval", at: 2000 } as never);
    expect(waiting?.agent_status).toBe("waiting-for-approval");
    expect(waiting?.updated_at).toBe(2000);
    const tab = (id: string) => TABS.find((t) => t.id === id)!;
    expect(tab("waiting").keep(waiting!)).toBe(true);
    expect(tab("idle").keep(waiting!)).toBe(false);
    const archived = apply(waiting!, { type: "status-changed", session_id: s.id, from: "running", to: "archived", at: 3000 } as never);
    expect(tab("active").keep(archived!)).toBe(false);
    expect(tab("archived").keep(archived!)).toBe(true);
  });
  it("never lets an older event undo a newer state", () => {
    const s = session("late", { access_mode: "read-only", updated_at: 20 });
    const old = { type: "access-mode-changed", session_id: s.id, to: "read-write", at: 10 } as never;
    expect(apply(s, old)).toBe(s);
    const fresh = { type: "access-mode-changed", session_id: s.id, to: "read-write", at: 30 } as never;
    expect(apply(s, fresh)?.access_mode).toBe("read-write");
  });

  it("leaves events that carry no field change to a reload", () => {
    expect(apply(session("x"), { type: "created", session_id: "id-x", at: 1 } as never)).toBeNull();
  });
});

describe("ago", () => {
  it("reads times as people say them", () => {
    expect(ago(0, 44_000)).toBe("just now");
    expect(ago(0, 5 * 60_000)).toBe("5 min");
    expect(ago(0, 3 * 3_600_000)).toBe("3 h");
    expect(ago(0, 2 * 86_400_000)).toBe("2 d");
    expect(ago(10_000, 0)).toBe("just now");
  });
});

describe("merge", () => {
  const a = session("a", { access_mode: "read-only", updated_at: 20 });
  const b = session("b", { updated_at: 5 });
  const current = new Map([
    [a.id, a],
    [b.id, b],
  ]);

  it("keeps what the page saw later than the answer", () => {
    const answer = [session("a", { access_mode: "read-write", updated_at: 10 })];
    expect(merge(current, answer, false).get(a.id)).toBe(a);
    expect(merge(current, answer, false).get(b.id)).toBe(b);
  });

  it("takes the answer when it is newer", () => {
    const answer = [session("a", { access_mode: "read-write", updated_at: 30 })];
    expect(merge(current, answer, false).get(a.id)?.access_mode).toBe("read-write");
  });

  it("drops what a whole list lacks", () => {
    const next = merge(current, [session("a", { updated_at: 30 })], true);
    expect([...next.keys()]).toEqual([a.id]);
  });
});
