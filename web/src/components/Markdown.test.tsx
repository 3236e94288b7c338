// A chat message's markdown: code highlighted, and nothing of a hostile
// transcript runs or renders as HTML.
import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Markdown } from "./Markdown";

const html = (text: string) => render(<Markdown text={text} />).container;

describe("Markdown", () => {
  it("highlights a fenced block in a language it knows", () => {
    const c = html("```rust\nfn main() { let x = 1; }\n```");
    const code = c.querySelector("pre > code")!;
    expect(code.classList.contains("hljs")).toBe(true);
    expect([...code.querySelectorAll(".hljs-keyword")].map((e) => e.textContent)).toEqual(["fn", "let"]);
    expect(code.textContent).toBe("fn main() { let x = 1; }\n");
  });

  it("knows the fences' usual aliases", () => {
    expect(html("```ts\nconst a: number = 1;\n```").querySelector(".hljs-keyword")?.textContent).toBe("const");
    expect(html("```toml\n[proxy]\nport = 1\n```").querySelector(".hljs-section")?.textContent).toBe("[proxy]");
  });

  it("leaves a block in an unknown or unnamed language plain", () => {
    for (const text of ["```brainfuck\n+[-]\n```", "```\nlet x = 1\n```"]) {
      const code = html(text).querySelector("pre > code")!;
      expect(code.querySelector("span")).toBeNull();
      expect(code.classList.contains("hljs")).toBe(false);
    }
  });

  it("renders raw HTML as text, never as elements", () => {
    const c = html('Hi <img src="x" onerror="window.hacked=1"> <script>window.hacked=1</script>\n\n<iframe src="https://evil.example"></iframe>');
    expect(c.querySelector("img, script, iframe")).toBeNull();
    expect((window as unknown as { hacked?: number }).hacked).toBeUndefined();
  });

  it("drops javascript: links", () => {
    const a = html("[click](javascript:alert(1))").querySelector("a")!;
    expect(a.getAttribute("href") ?? "").not.toContain("javascript");
  });

  it("does not let code escape its block", () => {
    const c = html('```html\n<img src=x onerror="window.hacked=1">\n```');
    expect(c.querySelector("img")).toBeNull();
    expect(c.querySelector("pre > code")!.textContent).toContain("<img src=x");
  });
});
