import { describe, expect, it } from "vitest";
import { EMPTY_GUARD, HACKED_GUARD, ROUND_1, ROUND_2 } from "./fixtures";
import {
  flagCount,
  formatAgreement,
  formatChange,
  formatFlags,
  formatPutBack,
  formatWinRate,
  guardPutBack,
  hasValues,
  heldoutReward,
  klAfter,
  nextBaseVersion,
  rewardAccuracy,
  roundName,
  roundSeries,
  runOf,
  sortRounds,
  trend,
} from "./rounds";
import type { Round } from "./types";

const round = (extra: Partial<Round>): Round => ({ ...ROUND_2, ...extra });

describe("order and names", () => {
  it("sorts rounds by number whatever the order they came in", () => {
    expect(sortRounds([ROUND_2, ROUND_1]).map((r) => r.number)).toEqual([1, 2]);
    expect(roundName(ROUND_2)).toBe("Round 2");
  });

  it("finds a run of the round by id, null for an unknown or missing id", () => {
    expect(runOf(ROUND_2, 6)?.state).toBe("queued");
    expect(runOf(ROUND_2, 99)).toBeNull();
    expect(runOf(ROUND_2, null)).toBeNull();
  });
});

describe("held-out reward", () => {
  it("reads the policy run's eval_heldout_reward_before/after first", () => {
    expect(heldoutReward(ROUND_1)).toEqual({ before: 0.3, after: 0.1, source: "run metrics" });
    expect(formatChange(heldoutReward(ROUND_1))).toBe("0.3 → 0.1");
    expect(trend(heldoutReward(ROUND_1))).toBe("down");
  });

  it("falls back to the mean over the RLHF run's held-out samples when the run reported none", () => {
    const r = round({ policy: { run: 3, kind: "rlhf" }, guard: HACKED_GUARD });
    expect(heldoutReward(r)).toEqual({ before: 0.29999999999999993, after: 0.10000000000000002, source: "held-out samples" });
    expect(formatChange(heldoutReward(r))).toBe("0.3 → 0.1");
  });

  it("does not take the samples of another run than the policy (a DPO run after the RLHF one)", () => {
    expect(heldoutReward(round({ policy: { run: 7, kind: "dpo" }, guard: HACKED_GUARD }))).toBeNull();
  });

  it("is null without a policy or any figure, and shows half a change when one end is missing", () => {
    expect(heldoutReward(ROUND_2)).toBeNull();
    expect(heldoutReward(round({ policy: { run: 3, kind: "rlhf" }, guard: EMPTY_GUARD }))).toBeNull();
    expect(formatChange(null)).toBe("—");
    expect(formatChange({ before: null, after: 0.12345 })).toBe("→ 0.123");
    expect(formatChange({ before: -1.5, after: null })).toBe("-1.5 →");
    expect(trend({ before: 0.2, after: 0.2 })).toBe("flat");
    expect(trend({ before: 0.1, after: 0.4 })).toBe("up");
    expect(trend({ before: null, after: 0.4 })).toBeNull();
  });
});

describe("figures", () => {
  it("reads KL (eval_kl_after, else kl_final) and the reward model's accuracy", () => {
    expect(klAfter(ROUND_1)).toBe(0.05);
    expect(klAfter(round({ policy: { run: 3, kind: "rlhf", kl_final: 0.2 } }))).toBe(0.2);
    expect(klAfter(ROUND_2)).toBeNull();
    expect(rewardAccuracy(ROUND_1)).toBe(0.71);
    expect(rewardAccuracy(round({ reward_model: { run: 2 } }))).toBeNull();
    expect(rewardAccuracy(ROUND_2)).toBeNull();
  });

  it("writes labeler agreement with its pairs, a dash when no pair was shared", () => {
    expect(formatAgreement(ROUND_1.labeling)).toBe("100% (4 pairs)");
    expect(formatAgreement({ ...ROUND_1.labeling, agreement: 0.75, agreement_pairs: 1 })).toBe("75% (1 pair)");
    expect(formatAgreement(ROUND_2.labeling)).toBe("—");
  });

  it("writes the human win rate with its interval", () => {
    expect(formatWinRate(ROUND_1.human_win_rate)).toBe("25% (6–64%)");
    expect(formatWinRate(null)).toBe("—");
  });

  it("counts the guard's flags, null for a round without an RLHF run", () => {
    expect(flagCount(ROUND_1)).toBe(5);
    expect(formatFlags(5)).toBe("5 flags");
    expect(formatFlags(1)).toBe("1 flag");
    expect(formatFlags(0)).toBe("0 flags");
    expect(flagCount(ROUND_2)).toBeNull();
    expect(formatFlags(null)).toBe("—");
  });
});

describe("guard samples put back", () => {
  it("counts the comparisons per end and names the run they came from", () => {
    const put = guardPutBack(ROUND_2.guard_samples);
    expect(put).toEqual({ kind: "queued", run: 3, best: 4, worst: 4 });
    expect(formatPutBack(put)).toBe("4 best · 4 worst");
  });

  it("says why none were put back, and nothing for a first round", () => {
    const skipped = guardPutBack({ skipped: "round 1 has no succeeded rlhf run" });
    expect(skipped).toEqual({ kind: "skipped", reason: "round 1 has no succeeded rlhf run", run: null });
    expect(formatPutBack(skipped)).toBe("skipped: round 1 has no succeeded rlhf run");
    expect(guardPutBack({ run: 4, skipped: "K > 2" })).toMatchObject({ kind: "skipped", run: 4 });
    expect(guardPutBack({})).toEqual({ kind: "none" });
    expect(guardPutBack(null)).toEqual({ kind: "none" });
    expect(formatPutBack({ kind: "none" })).toBe("—");
    expect(guardPutBack({ run: 3, best: [], worst: [] })).toEqual({ kind: "queued", run: 3, best: 0, worst: 0 });
  });
});

describe("series across rounds", () => {
  it("lines up held-out reward and human win rate per round, in round order, null where missing", () => {
    const series = roundSeries([ROUND_2, ROUND_1]);
    expect(series).toEqual({ labels: ["Round 1", "Round 2"], heldoutBefore: [0.3, null], heldoutAfter: [0.1, null], winRate: [0.25, null] });
    expect(hasValues(series.winRate)).toBe(true);
    expect(hasValues(roundSeries([ROUND_2]).heldoutAfter)).toBe(false);
  });
});

describe("the next round's version", () => {
  const choices = [{ id: 1 }, { id: 2 }, { id: 5 }];

  it("goes on from the newest version the latest round registered", () => {
    expect(nextBaseVersion([ROUND_1], choices)).toBe(2);
    const two = { ...ROUND_1, versions: [ROUND_1.versions[0], { id: 5, model: "policy-dpo", number: 1, label: "policy-dpo v1" }] };
    expect(nextBaseVersion([two], choices)).toBe(5);
  });

  it("else the latest round's base; null with no round or nothing the user may choose", () => {
    expect(nextBaseVersion([ROUND_1, ROUND_2], choices)).toBe(2);
    expect(nextBaseVersion([ROUND_1, round({ base_version: { id: 1, model: "policy", number: 1, label: "policy v1" } })], choices)).toBe(1);
    expect(nextBaseVersion([], choices)).toBeNull();
    expect(nextBaseVersion([ROUND_1], [{ id: 9 }])).toBeNull();
  });
});
