/**
 * Pure steps from an evaluation's results to what the leaderboard shows: versions in rank order with
 * the AI judge's score beside the humans', the pairwise win-rate matrix (row beats column), labels for
 * the length-difference bins, intervals as text, the plot's score axis and the colours of the cells.
 * Unit-tested in leaderboard.test.ts; the components only draw what these return.
 */
import { formatNumber, formatPercent, niceDomain } from "../ui/scale";
import type { Agreement, CriterionRef, Entry, EvalProgress, EvalStatus, LengthBin, Pair, Score, Scored, Verdict } from "./types";

/** The key of a criterion in selectors and lookups: "overall" for the project-wide order (id null). */
export function criterionKey(criterion: number | null): string {
  return criterion === null ? "overall" : String(criterion);
}

export function verdictFor(verdicts: Verdict[], criterion: number | null): Verdict | null {
  return verdicts.find((v) => v.criterion === criterion) ?? null;
}

export function agreementFor(agreement: Agreement[], criterion: number | null): Agreement | null {
  return agreement.find((a) => a.criterion === criterion) ?? null;
}

/** The criteria to offer, overall first (the server's order otherwise). */
export function orderedCriteria(criteria: CriterionRef[]): CriterionRef[] {
  return [...criteria].sort((a, b) => (a.id === null ? -1 : 0) - (b.id === null ? -1 : 0));
}

/** "policy v3", or the entry's own label when it has one. */
export function entryName(entry: Entry): string {
  return entry.label || `${entry.model} v${entry.number}`;
}

export type Row = { entry: Entry; human: Scored | null; ai: Scored | null };

function isScored(score: Score): score is Scored {
  return score.score !== null && Number.isFinite(score.score) && score.rank !== null;
}

/**
 * Every entry with its human and AI scores, best human rank first (then higher score); entries the
 * humans have not scored yet (no score, or a null one) come last, by name.
 */
export function rankedRows(entries: Entry[], human: Verdict | null, ai: Verdict | null): Row[] {
  const byEntry = (verdict: Verdict | null) => new Map((verdict?.scores ?? []).filter(isScored).map((s) => [s.entry, s]));
  const h = byEntry(human);
  const a = byEntry(ai);
  return entries
    .map((entry) => ({ entry, human: h.get(entry.id) ?? null, ai: a.get(entry.id) ?? null }))
    .sort((x, y) => {
      if (x.human && y.human) return x.human.rank - y.human.rank || y.human.score - x.human.score;
      if (x.human || y.human) return x.human ? -1 : 1;
      return entryName(x.entry).localeCompare(entryName(y.entry), undefined, { numeric: true });
    });
}

/** One cell of the matrix: how the row entry did against the column entry. */
export type Cell = Omit<Pair, "a" | "b"> & { row: number; col: number };

/**
 * The win-rate matrix in `order` (entry ids): cells[i][j] is how order[i] did against order[j]. A pair
 * is reported once (a against b); the mirror cell swaps wins and losses and takes 1 - rate, with the
 * interval mirrored too (a Wilson interval is symmetric under complement). The diagonal and pairs
 * with no votes are null.
 */
export function winMatrix(order: number[], pairs: Pair[]): (Cell | null)[][] {
  const found = new Map<string, Cell>();
  for (const p of pairs) {
    if (p.n <= 0) continue;
    const { a, b, ...rest } = p;
    found.set(`${a}:${b}`, { ...rest, row: a, col: b });
    found.set(`${b}:${a}`, {
      row: b,
      col: a,
      wins: p.losses,
      losses: p.wins,
      ties: p.ties,
      both_bad: p.both_bad,
      n: p.n,
      win_rate: 1 - p.win_rate,
      low: 1 - p.high,
      high: 1 - p.low,
    });
  }
  return order.map((row) => order.map((col) => (row === col ? null : (found.get(`${row}:${col}`) ?? null))));
}

/** What a cell's tooltip says, in words. */
export function cellTitle(rowName: string, colName: string, cell: Cell): string {
  const parts = [`${cell.wins} wins`, `${cell.losses} losses`, `${cell.ties} ties`];
  if (cell.both_bad) parts.push(`${cell.both_bad} both bad`);
  return `${rowName} beats ${colName} ${formatPercent(cell.win_rate, 0)} (95% interval ${formatInterval(cell.low, cell.high, percent0)}), n = ${cell.n}: ${parts.join(", ")}`;
}

/** A cell's background: white at 50%, greener as the row wins more, redder as it loses. */
export function winColor(rate: number): string {
  const t = Math.max(-1, Math.min(1, (rate - 0.5) * 2));
  const hue = t >= 0 ? 130 : 5;
  const lightness = 97 - Math.abs(t) * 30;
  return `hsl(${hue} 55% ${lightness.toFixed(0)}%)`;
}

/** A length-difference bin [min, max) in whole words as text: [5, 15) is "5–14", [100, ∞) "100+", [3, 4) "3". */
export function binLabel(bin: Pick<LengthBin, "min_words" | "max_words">): string {
  if (bin.max_words === null) return `${bin.min_words}+`;
  const last = bin.max_words - 1;
  if (last <= bin.min_words) return String(bin.min_words);
  return `${bin.min_words}–${last}`;
}

const percent0 = (v: number) => formatPercent(v, 0);

/** "1010–1055", "48–67%" (a unit given by the formatter is written once, at the end); "—" without both ends. */
export function formatInterval(low: number | null | undefined, high: number | null | undefined, format: (v: number) => string = (v) => formatNumber(v, 0)): string {
  if (low === null || low === undefined || high === null || high === undefined || !Number.isFinite(low) || !Number.isFinite(high)) return "—";
  const lo = format(low);
  const hi = format(high);
  if (lo.endsWith("%") && hi.endsWith("%")) return `${lo.slice(0, -1)}–${hi}`;
  return `${lo}–${hi}`;
}

/** "61% (50–70%)": a share with its interval. */
export function formatShare(value: number | null | undefined, low: number | null | undefined, high: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const interval = formatInterval(low, high, percent0);
  return interval === "—" ? percent0(value) : `${percent0(value)} (${interval})`;
}

/** The x axis of the score plot: every interval of both series and the mean (1000), on nice ticks. */
export function scoreDomain(rows: Row[], mean = 1000): [number, number] {
  const values = rows
    .flatMap((r) => [r.human, r.ai].flatMap((s) => (s ? [s.low, s.high, s.score] : [])))
    .filter((v): v is number => v !== null && Number.isFinite(v));
  if (values.length === 0) return [mean - 100, mean + 100];
  const lo = Math.min(mean, ...values);
  const hi = Math.max(mean, ...values);
  const pad = Math.max(5, (hi - lo) * 0.05);
  return niceDomain(lo - pad, hi + pad, 5);
}

/** How far labeling is: labels / labels_needed in [0, 1], null when nothing is needed yet. */
export function labelFraction(progress: EvalProgress): number | null {
  if (!progress.labels_needed) return null;
  return Math.max(0, Math.min(1, progress.labels / progress.labels_needed));
}

export function statusTone(status: EvalStatus | string): "good" | "bad" | "busy" | "plain" {
  if (status === "complete") return "good";
  if (status === "failed") return "bad";
  if (status === "generating" || status === "labeling") return "busy";
  return "plain";
}

/** An evaluation still changes (answers being generated, labels coming in): the page polls it. */
export function isLive(status: EvalStatus | string): boolean {
  return status === "generating" || status === "labeling";
}

/** The verdict has votes to show (a verdict with none is the "no labels yet" state). */
export function hasVotes(verdict: Verdict | null): verdict is Verdict {
  return !!verdict && verdict.votes > 0 && verdict.scores.length > 0;
}
