/**
 * Pure steps from an RLHF run's guard report (GET /api/runs/{id}/guard/) to the run page's
 * "Reward-hacking guard" panel: the flags with a short title each, the text rates of the reference
 * (before) and the policy (after), refusal rates per prompt group (helpful prompts refused are
 * over-refusal), the rewards before and after, and the people's verdict on the best- and
 * worst-scored samples. Unit-tested in guard.test.ts.
 */
import { formatShare } from "../evals/leaderboard";
import { formatNumber, formatPercent } from "../ui/scale";
import type { GuardFlag, GuardPeople, GuardReport } from "./types";

const FLAG_TITLES: Record<string, string> = {
  writes_user_turn: "Writes the user’s next turn",
  refuses: "Refuses more",
  over_refusal: "Over-refusal",
  heldout_reward_flat: "Held-out reward did not rise",
  humans_disagree: "People disagree",
};

export function flagTitle(flag: Pick<GuardFlag, "code">): string {
  return FLAG_TITLES[flag.code] ?? flag.code.replace(/_/g, " ");
}

/** A run that has written no held-out samples yet (still training, or failed before evaluating). */
export function isEmpty(report: GuardReport): boolean {
  return !report.samples;
}

export type RateRow = {
  key: "user_turn_rate" | "refusal_rate" | "mean_words";
  label: string;
  before: string;
  after: string;
  /** The guard flagged this rate (writes_user_turn, refuses). */
  flagged: boolean;
};

const percent = (v: number | null | undefined) => formatPercent(v, 0);

/** User-turn rate, refusal rate and mean length, before (the reference) and after (the policy). */
export function rateRows(report: GuardReport): RateRow[] {
  const { before, after } = report;
  const hasFlag = (code: string) => report.flags.some((f) => f.code === code);
  return [
    { key: "user_turn_rate", label: "Answers that go on with the user’s turn", before: percent(before.user_turn_rate), after: percent(after.user_turn_rate), flagged: hasFlag("writes_user_turn") },
    { key: "refusal_rate", label: "Answers that refuse", before: percent(before.refusal_rate), after: percent(after.refusal_rate), flagged: hasFlag("refuses") },
    { key: "mean_words", label: "Mean words per answer", before: formatNumber(before.mean_words, 1), after: formatNumber(after.mean_words, 1), flagged: false },
  ];
}

export type GroupRow = {
  group: string;
  n: number;
  before: string;
  after: string;
  /** What a refusal means in this group. */
  meaning: string;
  /** The helpful group when the guard flagged over-refusal. */
  overRefusal: boolean;
};

const GROUP_MEANING: Record<string, string> = {
  helpful: "deserve an answer: a refusal here is over-refusal",
  harmless: "red-team prompts: a refusal here is wanted",
};

/** Refusal rates per prompt group: helpful first, then harmless, then any other group by name. */
export function groupRows(report: GuardReport): GroupRow[] {
  const rank = (g: string) => (g === "helpful" ? 0 : g === "harmless" ? 1 : 2);
  const flagged = report.flags.some((f) => f.code === "over_refusal");
  return Object.entries(report.groups)
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([group, g]) => ({
      group,
      n: g.n,
      before: percent(g.refusal_rate_before),
      after: percent(g.refusal_rate_after),
      meaning: GROUP_MEANING[group] ?? "",
      overRefusal: group === "helpful" && flagged,
    }));
}

/**
 * The over-refusal in one line: how often the policy refuses helpful prompts against harmless ones,
 * or null when the run's prompts carry no helpful group.
 */
export function overRefusalLine(report: GuardReport): string | null {
  const helpful = report.groups.helpful;
  if (!helpful) return null;
  const harmless = report.groups.harmless;
  const tail = harmless ? `; harmless prompts: ${percent(harmless.refusal_rate_after)} (before ${percent(harmless.refusal_rate_before)})` : "";
  return `The policy refuses ${percent(helpful.refusal_rate_after)} of helpful prompts (before ${percent(helpful.refusal_rate_before)})${tail}.`;
}

export type RewardRow = { key: "reward" | "heldout_reward"; label: string; before: string; after: string; trend: "up" | "down" | "flat" | null };

/** Mean reward and held-out reward of the held-out samples, before and after. */
export function rewardRows(report: GuardReport): RewardRow[] {
  const row = (key: RewardRow["key"], label: string): RewardRow => {
    const { before = null, after = null } = report[key] ?? {};
    const trend = typeof before === "number" && typeof after === "number" ? (after > before ? "up" : after < before ? "down" : "flat") : null;
    return { key, label, before: formatNumber(before, 3), after: formatNumber(after, 3), trend };
  };
  return [row("reward", "Reward (the trained reward model)"), row("heldout_reward", "Held-out reward (a second reward model)")];
}

export type PeopleRow = { which: "best" | "worst"; label: string; comparisons: number; votes: number; verdict: string };

/** The people's votes on the policy's best- and worst-scored samples against the reference's answers. */
export function peopleRows(report: GuardReport): PeopleRow[] {
  const empty: GuardPeople = { comparisons: 0, votes: 0, policy_win_rate: null, low: null, high: null };
  return (["best", "worst"] as const).map((which) => {
    const p = report.people[which] ?? empty;
    const verdict = p.votes > 0 && p.policy_win_rate !== null ? formatShare(p.policy_win_rate, p.low, p.high) : p.comparisons > 0 ? "no votes yet" : "not put back yet";
    return { which, label: which === "best" ? "Best-scored samples" : "Worst-scored samples", comparisons: p.comparisons, votes: p.votes, verdict };
  });
}
