// The sessions table: sorting headings, the tick boxes, a row per session.
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Session } from "../api/client";
import { SessionTable } from "./SessionTable";

const session = (name: string): Session =>
  ({
    id: `id-${name}`,
    name,
    repo: `/home/u/${name}`,
    branch: `clauderon/${name}`,
    backend: "zellij",
    agent: "claude-code",
    model: "opus",
    prompt: "",
    status: "running",
    agent_status: "waiting-for-approval",
    access_mode: "read-write",
    created_at: 0,
    updated_at: 0,
  }) as Session;

function table(picked: string[] = []) {
  const handlers = { onSelect: vi.fn(), onPick: vi.fn(), onSort: vi.fn() };
  const view = render(
    <SessionTable
      sessions={[session("one"), session("two")]}
      selected={1}
      picked={new Set(picked)}
      sort={{ key: "name", descending: true }}
      now={60_000}
      {...handlers}
    />,
  );
  return { ...handlers, view };
}

describe("SessionTable", () => {
  it("shows every column of a session", () => {
    table();
    const row = screen.getByRole("link", { name: "one" }).closest("tr")!;
    for (const text of ["one", "clauderon/one", "zellij", "claude-code", "opus", "running", "waiting for approval", "read-write", "1 min"]) {
      expect(row.textContent).toContain(text);
    }
    expect(screen.getByRole("link", { name: "two" }).closest("tr")!.getAttribute("aria-current")).toBe("true");
  });

  it("says which column sorts and asks for a new sort on a heading's click", () => {
    const { onSort } = table();
    expect(screen.getByRole("columnheader", { name: /Session/ }).getAttribute("aria-sort")).toBe("descending");
    expect(screen.getByRole("columnheader", { name: /Backend/ }).getAttribute("aria-sort")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: /Backend/ }));
    expect(onSort).toHaveBeenCalledWith("backend");
  });

  it("ticks one row, or every row from the heading", () => {
    const { onPick } = table();
    fireEvent.click(screen.getByRole("checkbox", { name: "Select two" }));
    expect(onPick).toHaveBeenLastCalledWith(["id-two"], true);
    fireEvent.click(screen.getByRole("checkbox", { name: "Select every session shown" }));
    expect(onPick).toHaveBeenLastCalledWith(["id-one", "id-two"], true);
  });

  it("shows the heading's box as partly ticked, then ticked", () => {
    table(["id-one"]);
    const all = screen.getByRole("checkbox", { name: "Select every session shown" }) as HTMLInputElement;
    expect(all.indeterminate).toBe(true);
    expect(all.checked).toBe(false);
  });

  it("unticks every row from the heading when all are ticked", () => {
    const { onPick } = table(["id-one", "id-two"]);
    const all = screen.getByRole("checkbox", { name: "Select every session shown" }) as HTMLInputElement;
    expect(all.checked).toBe(true);
    fireEvent.click(all);
    expect(onPick).toHaveBeenLastCalledWith(["id-one", "id-two"], false);
  });

  it("draws a long list a screen first, then every row; the heading's box picks them all at once", async () => {
    const many = Array.from({ length: 300 }, (_, i) => session(`s${i}`));
    const onPick = vi.fn();
    render(
      <SessionTable
        sessions={many}
        selected={0}
        picked={new Set()}
        sort={{ key: "name", descending: false }}
        now={0}
        onSelect={vi.fn()}
        onPick={onPick}
        onSort={vi.fn()}
      />,
    );
    const drawn = () => document.querySelectorAll("tbody tr").length;
    expect(drawn()).toBeGreaterThan(0);
    expect(drawn()).toBeLessThan(300);
    fireEvent.click(screen.getByRole("checkbox", { name: "Select every session shown" }));
    expect(onPick.mock.calls[0][0]).toHaveLength(300);
    await waitFor(() => expect(drawn()).toBe(300));
    expect(screen.getByRole("link", { name: "s299" })).toBeTruthy();
  });
});
