/**
 * A small, safe Markdown subset for project and criterion instructions: headings, paragraphs,
 * bullet and numbered lists, fenced code, **bold**, *italic*, `code` and [links](https://...).
 * It parses to plain data that Markdown.tsx renders as React elements: no HTML is ever injected.
 */

export type Inline =
  | { kind: "text"; text: string }
  | { kind: "strong"; children: Inline[] }
  | { kind: "em"; children: Inline[] }
  | { kind: "code"; text: string }
  | { kind: "link"; href: string; children: Inline[] };

export type Block =
  | { kind: "heading"; level: number; children: Inline[] }
  | { kind: "paragraph"; children: Inline[] }
  | { kind: "list"; ordered: boolean; items: Inline[][] }
  | { kind: "code"; text: string };

const SAFE_HREF = /^(https?:|mailto:|\/|#)/i;

export function parseInline(source: string): Inline[] {
  const out: Inline[] = [];
  let text = "";
  const flush = () => {
    if (text) out.push({ kind: "text", text });
    text = "";
  };
  let i = 0;
  while (i < source.length) {
    const rest = source.slice(i);
    let m: RegExpMatchArray | null;
    if ((m = rest.match(/^`([^`]+)`/))) {
      flush();
      out.push({ kind: "code", text: m[1] });
    } else if ((m = rest.match(/^\*\*(.+?)\*\*/)) || (m = rest.match(/^__(.+?)__/))) {
      flush();
      out.push({ kind: "strong", children: parseInline(m[1]) });
    } else if ((m = rest.match(/^\*([^*\s](?:[^*]*[^*\s])?)\*/)) || (m = rest.match(/^_([^_\s](?:[^_]*[^_\s])?)_(?![A-Za-z0-9])/))) {
      flush();
      out.push({ kind: "em", children: parseInline(m[1]) });
    } else if ((m = rest.match(/^\[([^\]]+)\]\(([^)\s]+)\)/))) {
      flush();
      if (SAFE_HREF.test(m[2])) out.push({ kind: "link", href: m[2], children: parseInline(m[1]) });
      else out.push({ kind: "text", text: m[1] });
    } else {
      text += source[i];
      i += 1;
      continue;
    }
    i += m[0].length;
  }
  flush();
  return out;
}

export function parseMarkdown(source: string): Block[] {
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  const blocks: Block[] = [];
  let paragraph: string[] = [];
  let list: { ordered: boolean; items: string[] } | null = null;
  const flushParagraph = () => {
    if (paragraph.length) blocks.push({ kind: "paragraph", children: parseInline(paragraph.join(" ")) });
    paragraph = [];
  };
  const flushList = () => {
    if (list) blocks.push({ kind: "list", ordered: list.ordered, items: list.items.map(parseInline) });
    list = null;
  };
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    let m: RegExpMatchArray | null;
    if (line.trim().startsWith("```")) {
      flushParagraph();
      flushList();
      const code: string[] = [];
      n += 1;
      while (n < lines.length && !lines[n].trim().startsWith("```")) code.push(lines[n++]);
      blocks.push({ kind: "code", text: code.join("\n") });
    } else if ((m = line.match(/^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/))) {
      flushParagraph();
      flushList();
      blocks.push({ kind: "heading", level: m[1].length, children: parseInline(m[2]) });
    } else if ((m = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/))) {
      flushParagraph();
      const ordered = /\d/.test(m[1]);
      if (list && list.ordered !== ordered) flushList();
      list ??= { ordered, items: [] };
      list.items.push(m[2]);
    } else if (line.trim() === "") {
      flushParagraph();
      flushList();
    } else if (list && /^\s+\S/.test(line)) {
      list.items[list.items.length - 1] += " " + line.trim();
    } else {
      flushList();
      paragraph.push(line.trim());
    }
  }
  flushParagraph();
  flushList();
  return blocks;
}
