/** Pure logic of the constitution editor, the AI audit and the revisions view (constitution.test.ts):
 * editing a draft of principles, placing the server's `principles[i].field` errors on their card,
 * and turning an order of scores into rank positions. */
import type { Principle, ScoreOrder } from "../api";

export const PRINCIPLE_FIELDS = ["key", "name", "critique_request", "revision_request", "choice_question"] as const;
export type PrincipleField = (typeof PRINCIPLE_FIELDS)[number];

/** A principle being edited: `uid` keeps its card (and its errors) while cards move. */
export type DraftPrinciple = Principle & { uid: number };

let nextUid = 1;
function uid(): number {
  return nextUid++;
}

export function emptyPrinciple(): DraftPrinciple {
  return { uid: uid(), key: "", name: "", critique_request: "", revision_request: "", choice_question: "" };
}

/** A draft from saved principles (each gets a fresh uid). */
export function draftOf(principles: readonly Principle[]): DraftPrinciple[] {
  return principles.map((p) => ({
    uid: uid(),
    key: p.key ?? "",
    name: p.name ?? "",
    critique_request: p.critique_request ?? "",
    revision_request: p.revision_request ?? "",
    choice_question: p.choice_question ?? "",
  }));
}

/** The principles to send: the draft without its uids, fields in a fixed order. */
export function principlesOf(draft: readonly DraftPrinciple[]): Principle[] {
  return draft.map((p) => ({
    key: p.key,
    name: p.name,
    critique_request: p.critique_request,
    revision_request: p.revision_request,
    choice_question: p.choice_question,
  }));
}

/** Whether the draft differs from the saved principles (null: nothing saved yet, so any draft counts). */
export function draftChanged(draft: readonly DraftPrinciple[], saved: readonly Principle[] | null): boolean {
  if (saved === null) return draft.length > 0;
  return JSON.stringify(principlesOf(draft)) !== JSON.stringify(principlesOf(draftOf(saved)));
}

export function addPrinciple(draft: readonly DraftPrinciple[]): DraftPrinciple[] {
  return [...draft, emptyPrinciple()];
}

export function removePrinciple(draft: readonly DraftPrinciple[], index: number): DraftPrinciple[] {
  if (index < 0 || index >= draft.length) return [...draft];
  return draft.filter((_, i) => i !== index);
}

/** Move the principle at `index` by `delta` (-1 up, +1 down); out of range leaves the draft as it is. */
export function movePrinciple(draft: readonly DraftPrinciple[], index: number, delta: number): DraftPrinciple[] {
  const target = index + delta;
  if (index < 0 || index >= draft.length || target < 0 || target >= draft.length) return [...draft];
  const next = [...draft];
  [next[index], next[target]] = [next[target], next[index]];
  return next;
}

export function updatePrinciple(draft: readonly DraftPrinciple[], index: number, field: PrincipleField, value: string): DraftPrinciple[] {
  return draft.map((p, i) => (i === index ? { ...p, [field]: value } : p));
}

/** Errors of one principle card: by field, and "" for the principle as a whole. */
export type CardErrors = Partial<Record<PrincipleField | "", string>>;

/**
 * Split field errors (from `fieldErrors`, keyed `principles[2].critique_request`) into errors per
 * principle index and the rest: `list` for the list itself ("principles"), `other` for anything else
 * (note, "" and unknown keys, as "key: message" unless the key is "").
 */
export function principleErrors(errors: Record<string, string>): { cards: Record<number, CardErrors>; list: string; other: string } {
  const cards: Record<number, CardErrors> = {};
  const list: string[] = [];
  const other: string[] = [];
  for (const [key, message] of Object.entries(errors)) {
    const match = /^principles\[(\d+)\](?:\.(\w+))?$/.exec(key);
    if (match) {
      const index = Number(match[1]);
      const field = match[2];
      const known = field === undefined || (PRINCIPLE_FIELDS as readonly string[]).includes(field);
      const slot: PrincipleField | "" = known && field !== undefined ? (field as PrincipleField) : "";
      const text = known ? message : `${field}: ${message}`;
      const card = (cards[index] ??= {});
      card[slot] = card[slot] ? `${card[slot]} ${text}` : text;
    } else if (key === "principles") {
      list.push(message);
    } else {
      other.push(key === "" ? message : `${key}: ${message}`);
    }
  }
  return { cards, list: list.join(" "), other: other.join(" ") };
}

/** Card errors by index, moved onto the cards' uids (so they follow a card that moves). */
export function errorsByUid(draft: readonly DraftPrinciple[], cards: Record<number, CardErrors>): Record<number, CardErrors> {
  const out: Record<number, CardErrors> = {};
  for (const [index, errors] of Object.entries(cards)) {
    const card = draft[Number(index)];
    if (card) out[card.uid] = errors;
  }
  return out;
}

/** "A", "B", ... "Z", "AA": the letter a completion shows under (by its place in position order). */
export function letter(index: number): string {
  let out = "";
  let n = index;
  do {
    out = String.fromCharCode(65 + (n % 26)) + out;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return out;
}

/** One completion's place in an order: its rank (1 = best; ties share the better rank), or failed. */
export type RankCell = { rank: number | null; tied: boolean; failed: boolean; label: string };

/**
 * Rank positions of an order of scores (lower score = better; "F" = failed/nonsense). Ties share
 * the best rank they cover (scores 1, 1, 3 -> ranks 1, 1, 3; scores 1.5, 1.5, 3 -> 1, 1, 3).
 */
export function rankPositions(order: ScoreOrder): Record<string, RankCell> {
  const scores = Object.values(order).filter((s): s is number => typeof s === "number" && Number.isFinite(s));
  const out: Record<string, RankCell> = {};
  for (const [id, score] of Object.entries(order)) {
    if (typeof score !== "number" || !Number.isFinite(score)) {
      out[id] = { rank: null, tied: false, failed: true, label: "F" };
      continue;
    }
    const rank = 1 + scores.filter((s) => s < score).length;
    const tied = scores.filter((s) => s === score).length > 1;
    out[id] = { rank, tied, failed: false, label: tied ? `=${rank}` : String(rank) };
  }
  return out;
}

/** An order best first in letters: "B > A = C", failed ones after ("B > A · F: C"); "—" when empty. */
export function orderSummary(order: ScoreOrder, completions: readonly { id: number; position: number }[]): string {
  const sorted = [...completions].sort((a, b) => a.position - b.position);
  const letters = new Map(sorted.map((c, i) => [String(c.id), letter(i)]));
  const ranks = rankPositions(order);
  const groups = new Map<number, string[]>();
  const failed: string[] = [];
  for (const c of sorted) {
    const cell = ranks[String(c.id)];
    if (!cell) continue;
    const name = letters.get(String(c.id))!;
    if (cell.failed || cell.rank === null) failed.push(name);
    else groups.set(cell.rank, [...(groups.get(cell.rank) ?? []), name]);
  }
  const best = [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([, names]) => names.join(" = "));
  const parts = best.length ? [best.join(" > ")] : [];
  if (failed.length) parts.push(`F: ${failed.join(", ")}`);
  return parts.join(" · ") || "—";
}

/** An agreement rate as "73%" with its pair count, or "—" when no pair counted. */
export function formatAgreement(rate: { rate: number | null; pairs: number }): { value: string; pairs: string } {
  const pairs = `${rate.pairs.toLocaleString("en-US")} ${rate.pairs === 1 ? "pair" : "pairs"}`;
  if (rate.rate === null || !Number.isFinite(rate.rate)) return { value: "—", pairs };
  return { value: `${Math.round(rate.rate * 1000) / 10}%`, pairs };
}

/** The principle keys a cai_revise run reports in `outputs.principle_counts` (sorted), or []. */
export function principleKeysOf(outputs: Record<string, unknown> | null | undefined): { key: string; count: number | null }[] {
  const counts = outputs?.principle_counts;
  if (!counts || typeof counts !== "object" || Array.isArray(counts)) return [];
  return Object.entries(counts as Record<string, unknown>)
    .map(([key, count]) => ({ key, count: typeof count === "number" ? count : null }))
    .sort((a, b) => a.key.localeCompare(b.key));
}

const AI_FEEDBACK_COUNTS: [string, string][] = [
  ["recorded", "AI labels recorded"],
  ["spot_checks", "Kept for human spot checks"],
  ["left_queue", "Left the human queue"],
  ["already", "Already AI-labeled"],
  ["rejected", "Rejected"],
];

/** The counts an ai_feedback run reports, in a fixed order, only those present as numbers. */
export function aiFeedbackCounts(outputs: Record<string, unknown> | null | undefined): { key: string; label: string; value: number }[] {
  return AI_FEEDBACK_COUNTS.filter(([key]) => typeof outputs?.[key] === "number").map(([key, label]) => ({
    key,
    label,
    value: outputs![key] as number,
  }));
}

/** "21–40 of 95" for a page at `offset` with `shown` items of `count`. */
export function pageRange(offset: number, shown: number, count: number): string {
  if (count === 0 || shown === 0) return `0 of ${count}`;
  return `${offset + 1}–${offset + shown} of ${count}`;
}
