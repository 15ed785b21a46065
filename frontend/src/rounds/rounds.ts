/**
 * Pure steps from GET /api/projects/{id}/rounds/ to what the rounds page shows: rounds in order, each
 * figure of a round as text (held-out reward before -> after, KL, the human win rate with its
 * interval, the guard samples put back or why not), the plot's series across rounds, and the version
 * the next round starts from by default. Unit-tested in rounds.test.ts.
 */
import { formatShare } from "../evals/leaderboard";
import { formatNumber, formatPercent } from "../ui/scale";
import type { GuardSamples, HumanWinRate, Round, RoundLabeling, RoundRun } from "./types";

export const ARROW = "\u2192";

/** Rounds by number (the API lists them so; this keeps the page right whatever the order). */
export function sortRounds(rounds: Round[]): Round[] {
  return [...rounds].sort((a, b) => a.number - b.number);
}

export function roundName(round: Pick<Round, "number">): string {
  return `Round ${round.number}`;
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A before -> after pair, and where it comes from. */
export type Change = { before: number | null; after: number | null; source: "run metrics" | "held-out samples" };

/**
 * The held-out reward model's score of the reference (before) and the policy (after): the policy
 * run's eval_heldout_reward_before/after, else (an RLHF run that reported none) the mean over its
 * held-out samples from the guard report. Null when neither has a figure.
 */
export function heldoutReward(round: Round): Change | null {
  const policy = round.policy;
  if (policy) {
    const before = finite(policy.eval_heldout_reward_before);
    const after = finite(policy.eval_heldout_reward_after);
    if (before !== null || after !== null) return { before, after, source: "run metrics" };
  }
  const samples = round.guard?.heldout_reward;
  if (samples && policy?.run === round.guard?.run) {
    const before = finite(samples.before);
    const after = finite(samples.after);
    if (before !== null || after !== null) return { before, after, source: "held-out samples" };
  }
  return null;
}

/** "0.3 → 0.1", "→ 0.1" with no before, "0.3 →" with no after, "—" with neither. */
export function formatChange(change: Pick<Change, "before" | "after"> | null, digits = 3): string {
  if (!change || (change.before === null && change.after === null)) return "—";
  const before = change.before === null ? "" : formatNumber(change.before, digits);
  const after = change.after === null ? "" : formatNumber(change.after, digits);
  return `${before} ${ARROW} ${after}`.trim();
}

/** "up", "down" or "flat" when both ends are known; null otherwise. */
export function trend(change: Pick<Change, "before" | "after"> | null): "up" | "down" | "flat" | null {
  if (!change || change.before === null || change.after === null) return null;
  if (change.after > change.before) return "up";
  if (change.after < change.before) return "down";
  return "flat";
}

/** The policy's KL from the reference on held-out prompts (eval_kl_after), else the last training KL. */
export function klAfter(round: Round): number | null {
  return finite(round.policy?.eval_kl_after) ?? finite(round.policy?.kl_final);
}

/** The reward model's held-out pairwise accuracy (eval_accuracy), null without a reward model run. */
export function rewardAccuracy(round: Round): number | null {
  return finite(round.reward_model?.eval_accuracy);
}

/** "100% (4 pairs)"; "—" when no two labelers ranked the same comparison. */
export function formatAgreement(labeling: RoundLabeling): string {
  if (labeling.agreement === null || !Number.isFinite(labeling.agreement)) return "—";
  return `${formatPercent(labeling.agreement, 0)} (${labeling.agreement_pairs} ${labeling.agreement_pairs === 1 ? "pair" : "pairs"})`;
}

/** "25% (6–64%)": the new version's human win rate against the round's base with its interval. */
export function formatWinRate(win: HumanWinRate | null): string {
  return win ? formatShare(win.win_rate, win.low, win.high) : "—";
}

/** The round's run of this id (for its state), if the round lists it. */
export function runOf(round: Round, id: number | null): RoundRun | null {
  return id === null ? null : (round.runs.find((r) => r.id === id) ?? null);
}

/** What a round put back to labelers from the previous round's RLHF run. */
export type GuardPutBack =
  | { kind: "none" }
  | { kind: "skipped"; reason: string; run: number | null }
  | { kind: "queued"; run: number | null; best: number; worst: number };

export function guardPutBack(samples: GuardSamples | null | undefined): GuardPutBack {
  if (!samples || Object.keys(samples).length === 0) return { kind: "none" };
  const run = typeof samples.run === "number" ? samples.run : null;
  if (typeof samples.skipped === "string") return { kind: "skipped", reason: samples.skipped, run };
  const count = (ids: unknown) => (Array.isArray(ids) ? ids.length : 0);
  return { kind: "queued", run, best: count(samples.best), worst: count(samples.worst) };
}

/** "4 best · 4 worst", the reason it was skipped, or "—" (a first round has no previous one). */
export function formatPutBack(put: GuardPutBack): string {
  if (put.kind === "none") return "—";
  if (put.kind === "skipped") return `skipped: ${put.reason}`;
  return `${put.best} best · ${put.worst} worst`;
}

/** How many flags the guard raised on the round's RLHF run; null when the round has none. */
export function flagCount(round: Round): number | null {
  return round.guard ? round.guard.flags.length : null;
}

export function formatFlags(count: number | null): string {
  if (count === null) return "—";
  return `${count} ${count === 1 ? "flag" : "flags"}`;
}

/** The series the plot draws across rounds: held-out reward before/after and the human win rate. */
export type RoundSeries = { labels: string[]; heldoutBefore: (number | null)[]; heldoutAfter: (number | null)[]; winRate: (number | null)[] };

export function roundSeries(rounds: Round[]): RoundSeries {
  const ordered = sortRounds(rounds);
  const heldout = ordered.map(heldoutReward);
  return {
    labels: ordered.map(roundName),
    heldoutBefore: heldout.map((c) => c?.before ?? null),
    heldoutAfter: heldout.map((c) => c?.after ?? null),
    winRate: ordered.map((r) => r.human_win_rate?.win_rate ?? null),
  };
}

/** A series with at least one value is worth a plot. */
export function hasValues(values: (number | null)[]): boolean {
  return values.some((v) => v !== null);
}

/**
 * The version the next round generates with by default: the newest version the latest round
 * registered (the loop goes on from what it made), else that round's base; null with no round or
 * when the version is not among those the user may choose.
 */
export function nextBaseVersion(rounds: Round[], choices: { id: number }[]): number | null {
  const latest = sortRounds(rounds).at(-1);
  if (!latest) return null;
  const allowed = new Set(choices.map((c) => c.id));
  const made = [...latest.versions].sort((a, b) => b.id - a.id).map((v) => v.id);
  return [...made, latest.base_version.id].find((id) => allowed.has(id)) ?? null;
}
