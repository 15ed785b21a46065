import { describe, expect, it } from "vitest";
import { parseInline, parseMarkdown } from "./markdown";

describe("parseMarkdown", () => {
  it("parses headings, paragraphs, lists and code", () => {
    const blocks = parseMarkdown("# Rank well\n\nPrefer **helpful**\nanswers.\n\n- one\n- two\n  continued\n1. first\n\n```\nx < y\n```");
    expect(blocks).toEqual([
      { kind: "heading", level: 1, children: [{ kind: "text", text: "Rank well" }] },
      {
        kind: "paragraph",
        children: [
          { kind: "text", text: "Prefer " },
          { kind: "strong", children: [{ kind: "text", text: "helpful" }] },
          { kind: "text", text: " answers." },
        ],
      },
      { kind: "list", ordered: false, items: [[{ kind: "text", text: "one" }], [{ kind: "text", text: "two continued" }]] },
      { kind: "list", ordered: true, items: [[{ kind: "text", text: "first" }]] },
      { kind: "code", text: "x < y" },
    ]);
  });

  it("is empty for empty text", () => {
    expect(parseMarkdown("")).toEqual([]);
    expect(parseMarkdown("\n\n")).toEqual([]);
  });
});

describe("parseInline", () => {
  it("parses emphasis, code and safe links", () => {
    expect(parseInline("*a* `b` [c](https://x.org)")).toEqual([
      { kind: "em", children: [{ kind: "text", text: "a" }] },
      { kind: "text", text: " " },
      { kind: "code", text: "b" },
      { kind: "text", text: " " },
      { kind: "link", href: "https://x.org", children: [{ kind: "text", text: "c" }] },
    ]);
  });

  it("drops unsafe link targets, keeping the text", () => {
    expect(parseInline("[click](javascript:alert(1))")).toEqual([{ kind: "text", text: "click" }, { kind: "text", text: ")" }]);
  });

  it("keeps lone stars and snake_case as text", () => {
    expect(parseInline("2 * 3 * 4 and snake_case_name")).toEqual([{ kind: "text", text: "2 * 3 * 4 and snake_case_name" }]);
  });
});
