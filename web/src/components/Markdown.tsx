// A chat message's markdown: rendered by react-markdown, which never renders
// raw HTML (a transcript is the agent's and the model's words, untrusted), with
// fenced code highlighted by highlight.js (through lowlight, which yields a
// syntax tree, never HTML) for the languages agents write most. A block names
// its language (```rust) to be highlighted; nothing is guessed, and a language
// not listed here stays plain. (rehype-highlight would do the same but always
// bundles lowlight's 37 common grammars: 70 KB compressed.)
import type { Element, Root } from "hast";
import { toText } from "hast-util-to-text";
import { createLowlight } from "lowlight";
import ReactMarkdown from "react-markdown";
import { visit } from "unist-util-visit";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import diff from "highlight.js/lib/languages/diff";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import shell from "highlight.js/lib/languages/shell";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";
import ini from "highlight.js/lib/languages/ini";

const LANGUAGES = { bash, css, diff, go, java, javascript, json, python, rust, shell, sql, typescript, xml, yaml, ini };
// Aliases agents use in fences that highlight.js files under another name.
const ALIASES = { bash: ["sh", "zsh"], javascript: ["js", "jsx"], typescript: ["ts", "tsx"], xml: ["html"], ini: ["toml"], python: ["py"], rust: ["rs"] };

const lowlight = createLowlight(LANGUAGES);
lowlight.registerAlias(ALIASES);

/** The language a `<code>` names in its `language-*` class, when it is one we highlight. */
function languageOf(code: Element): string | null {
  const classes = code.properties.className;
  for (const c of Array.isArray(classes) ? classes : []) {
    const lang = String(c).replace(/^lang(uage)?-/, "");
    if (lang !== String(c) && lowlight.registered(lang)) return lang;
  }
  return null;
}

/** The rehype step: each `<pre><code class="language-X">` gets highlight.js's spans. */
function highlight() {
  return (tree: Root) => {
    visit(tree, "element", (node, _index, parent) => {
      if (node.tagName !== "code" || parent?.type !== "element" || parent.tagName !== "pre") return;
      const lang = languageOf(node);
      if (!lang) return;
      const result = lowlight.highlight(lang, toText(node, { whitespace: "pre" }));
      node.properties.className = ["hljs", ...(Array.isArray(node.properties.className) ? node.properties.className : [])];
      node.children = result.children as Element["children"];
    });
  };
}

const PLUGINS = [highlight];

export function Markdown({ text }: { text: string }) {
  return <ReactMarkdown rehypePlugins={PLUGINS}>{text}</ReactMarkdown>;
}
