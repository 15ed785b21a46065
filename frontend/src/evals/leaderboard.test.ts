import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import {
  agreementFor,
  binLabel,
  cellTitle,
  criterionKey,
  entryName,
  formatInterval,
  formatShare,
  hasVotes,
  isLive,
  labelFraction,
  orderedCriteria,
  rankedRows,
  scoreDomain,
  statusTone,
  verdictFor,
  winColor,
  winMatrix,
} from "./leaderboard";
import { buildCreateBody, EMPTY_FORM, mapCreateErrors } from "./newEval";
import type { Entry, Pair, Verdict } from "./types";

const entry = (id: number, number: number, label = ""): Entry => ({ id, version: 100 + id, label, model: "policy", number, run: 80 + id, run_state: "succeeded", samples: 40 });
const ENTRIES = [entry(9, 1), entry(10, 2), entry(11, 3, "policy v3 (rlhf)")];

const verdict = (scores: [number, number, number][], extra: Partial<Verdict> = {}): Verdict => ({
  criterion: null,
  name: "overall",
  votes: 120,
  comparisons: 40,
  scores: scores.map(([id, score, rank]) => ({ entry: id, score, low: score - 20, high: score + 20, rank, votes: 80 })),
  pairs: [],
  length_bias: { longer_wins: null, low: null, high: null, n: 0, bins: [] },
  ...extra,
});

const pair = (a: number, b: number, wins: number, losses: number, ties: number, both_bad = 0): Pair => {
  const n = wins + losses + ties + both_bad;
  return { a, b, wins, losses, ties, both_bad, n, win_rate: (wins + (ties + both_bad) / 2) / n, low: 0.4, high: 0.7 };
};

describe("criteria", () => {
  it("keys the overall order as 'overall' and puts it first", () => {
    expect(criterionKey(null)).toBe("overall");
    expect(criterionKey(4)).toBe("4");
    expect(orderedCriteria([{ id: 4, name: "helpful" }, { id: null, name: "overall" }, { id: 2, name: "harmless" }]).map((c) => c.name)).toEqual([
      "overall",
      "helpful",
      "harmless",
    ]);
  });

  it("finds the verdict and agreement of a criterion, null when there is none", () => {
    const helpful = verdict([], { criterion: 4, name: "helpful" });
    expect(verdictFor([verdict([]), helpful], 4)).toBe(helpful);
    expect(verdictFor([helpful], null)).toBeNull();
    const overall = { criterion: null, name: "overall", n: 40, agree: 31, rate: 0.775, low: 0.62, high: 0.88 };
    expect(agreementFor([overall], null)).toBe(overall);
    expect(agreementFor([overall], 4)).toBeNull();
  });
});

describe("rankedRows", () => {
  it("orders by the humans' rank and puts the AI's score beside each", () => {
    const human = verdict([
      [9, 980, 3],
      [10, 1032, 1],
      [11, 988, 2],
    ]);
    const ai = verdict([
      [9, 1040, 1],
      [10, 1000, 2],
    ]);
    const rows = rankedRows(ENTRIES, human, ai);
    expect(rows.map((r) => r.entry.id)).toEqual([10, 11, 9]);
    expect(rows.map((r) => r.ai?.score ?? null)).toEqual([1000, null, 1040]);
  });

  it("treats a null score (an entry no vote touched) as unscored", () => {
    const human = verdict([[10, 1010, 1]]);
    human.scores.push({ entry: 9, score: null, low: null, high: null, rank: null, votes: 0 });
    const rows = rankedRows(ENTRIES.slice(0, 2), human, null);
    expect(rows.map((r) => [r.entry.id, r.human?.score ?? null])).toEqual([
      [10, 1010],
      [9, null],
    ]);
    expect(scoreDomain(rows)).toEqual(scoreDomain(rankedRows(ENTRIES.slice(1, 2), verdict([[10, 1010, 1]]), null)));
  });

  it("breaks equal ranks by score and puts unscored entries last, by name", () => {
    const human = verdict([
      [10, 990, 2],
      [11, 1010, 2],
    ]);
    const rows = rankedRows([entry(12, 10), entry(9, 9), ...ENTRIES.slice(1)], human, null);
    expect(rows.map((r) => r.entry.id)).toEqual([11, 10, 9, 12]);
    expect(rows.every((r) => r.ai === null)).toBe(true);
  });

  it("names an entry by its label, else model and number", () => {
    expect(entryName(ENTRIES[0])).toBe("policy v1");
    expect(entryName(ENTRIES[2])).toBe("policy v3 (rlhf)");
  });
});

describe("winMatrix", () => {
  it("fills both cells of a pair: the mirror swaps wins and losses and complements rate and interval", () => {
    const p = pair(9, 10, 50, 30, 10, 5); // (50 + 7.5) / 95
    const m = winMatrix([9, 10, 11], [p]);
    expect(m[0][0]).toBeNull();
    expect(m[0][1]).toMatchObject({ row: 9, col: 10, wins: 50, losses: 30, ties: 10, both_bad: 5, n: 95 });
    expect(m[0][1]!.win_rate).toBeCloseTo(57.5 / 95, 12);
    const mirror = m[1][0]!;
    expect(mirror).toMatchObject({ row: 10, col: 9, wins: 30, losses: 50, ties: 10, both_bad: 5, n: 95 });
    expect(mirror.win_rate).toBeCloseTo(1 - 57.5 / 95, 12);
    expect(mirror.low).toBeCloseTo(0.3, 12);
    expect(mirror.high).toBeCloseTo(0.6, 12);
    // Rates of a pair and its mirror add to 1; pairs nobody voted on stay empty.
    expect(m[0][1]!.win_rate + mirror.win_rate).toBeCloseTo(1, 12);
    expect(m[0][2]).toBeNull();
    expect(m[2][1]).toBeNull();
  });

  it("follows the order it is given and skips pairs with no votes", () => {
    const m = winMatrix([10, 9], [pair(9, 10, 3, 1, 0), { ...pair(10, 11, 1, 1, 0), n: 0 }]);
    expect(m[0][1]).toMatchObject({ row: 10, col: 9, wins: 1, losses: 3 });
    expect(m[1][0]).toMatchObject({ row: 9, col: 10, wins: 3, losses: 1 });
    expect(winMatrix([10, 11], [{ ...pair(10, 11, 1, 1, 0), n: 0 }])[0][1]).toBeNull();
  });

  it("says what a cell means in its tooltip", () => {
    const cell = winMatrix([9, 10], [{ ...pair(9, 10, 50, 30, 10, 5), low: 0.48, high: 0.67 }])[0][1]!;
    expect(cellTitle("policy v1", "policy v2", cell)).toBe(
      "policy v1 beats policy v2 61% (95% interval 48–67%), n = 95: 50 wins, 30 losses, 10 ties, 5 both bad",
    );
  });

  it("colours 50% white, wins green and losses red, clamped", () => {
    expect(winColor(0.5)).toBe("hsl(130 55% 97%)");
    expect(winColor(1)).toBe("hsl(130 55% 67%)");
    expect(winColor(0)).toBe("hsl(5 55% 67%)");
    expect(winColor(1.5)).toBe(winColor(1));
  });
});

describe("labels and intervals", () => {
  it("labels length bins [min, max) in whole words, with an open end", () => {
    expect(binLabel({ min_words: 1, max_words: 5 })).toBe("1–4");
    expect(binLabel({ min_words: 5, max_words: 15 })).toBe("5–14");
    expect(binLabel({ min_words: 100, max_words: null })).toBe("100+");
    expect(binLabel({ min_words: 3, max_words: 4 })).toBe("3");
  });

  it("writes intervals with the unit once", () => {
    expect(formatInterval(1010.04, 1055.2)).toBe("1010–1055");
    expect(formatInterval(0.48, 0.671, (v) => `${Math.round(v * 100)}%`)).toBe("48–67%");
    expect(formatInterval(null, 3)).toBe("—");
    expect(formatInterval(Number.NaN, 3)).toBe("—");
    expect(formatShare(0.61, 0.5, 0.7)).toBe("61% (50–70%)");
    expect(formatShare(0.61, null, null)).toBe("61%");
    expect(formatShare(null, 0.5, 0.7)).toBe("—");
  });
});

describe("scoreDomain", () => {
  it("covers every interval of both series and the mean, on nice ends", () => {
    const rows = rankedRows(ENTRIES, verdict([[9, 1030, 1], [10, 990, 2]]), verdict([[9, 1100, 1]]));
    const [lo, hi] = scoreDomain(rows);
    expect(lo).toBeLessThanOrEqual(970);
    expect(hi).toBeGreaterThanOrEqual(1120);
    expect(lo % 10).toBe(0);
    expect(hi % 10).toBe(0);
  });

  it("centres on the mean when nothing is scored", () => {
    expect(scoreDomain(rankedRows(ENTRIES, null, null))).toEqual([900, 1100]);
  });
});

describe("progress and status", () => {
  const progress = { prompts: 40, pairs_expected: 40, comparisons: 40, labels: 55, labels_needed: 120, complete: 12, overlap: 3 };
  it("measures labels against those needed, clamped; null when none are needed", () => {
    expect(labelFraction(progress)).toBeCloseTo(55 / 120, 12);
    expect(labelFraction({ ...progress, labels: 130 })).toBe(1);
    expect(labelFraction({ ...progress, labels_needed: 0 })).toBeNull();
  });

  it("tones and liveness by status", () => {
    expect(statusTone("complete")).toBe("good");
    expect(statusTone("failed")).toBe("bad");
    expect(statusTone("labeling")).toBe("busy");
    expect(isLive("generating")).toBe(true);
    expect(isLive("labeling")).toBe(true);
    expect(isLive("complete")).toBe(false);
    expect(isLive("failed")).toBe(false);
  });

  it("has votes only with votes and scores", () => {
    expect(hasVotes(null)).toBe(false);
    expect(hasVotes(verdict([], { votes: 0 }))).toBe(false);
    expect(hasVotes(verdict([[9, 1000, 1]]))).toBe(true);
  });
});

describe("buildCreateBody", () => {
  const form = { ...EMPTY_FORM, project: "7", dataset: "55", versions: ["12", "13"] };

  it("sends the defaults: split test, limit 100, no name, generation or seed", () => {
    expect(buildCreateBody(form)).toEqual({ project: 7, body: { versions: [12, 13], dataset: 55, split: "test", limit: 100 } });
  });

  it("sends what was typed, all splits as null, distinct versions", () => {
    const built = buildCreateBody({
      ...form,
      name: "  v2 vs v3 ",
      split: "all",
      template: "3",
      limit: "2000",
      versions: ["12", "13", "12"],
      maxNewTokens: "64",
      temperature: "0.7",
      seed: "0",
    });
    expect(built).toEqual({
      project: 7,
      body: { name: "v2 vs v3", versions: [12, 13], dataset: 55, split: null, limit: 2000, template: 3, generation: { max_new_tokens: 64, temperature: 0.7 }, seed: 0 },
    });
  });

  it("refuses what the server would refuse, at the field", () => {
    const built = buildCreateBody({ ...EMPTY_FORM, versions: ["12"], limit: "2001", seed: "-1", maxNewTokens: "0", temperature: "hot" });
    expect(built.errors).toEqual({
      project: "Choose the project whose prompts and labelers the evaluation uses.",
      dataset: "Choose the dataset whose prompts the versions answer.",
      versions: "Choose at least 2 versions to compare.",
      limit: "Limit must be 1..2000.",
      seed: "Seed must be a whole number, not “-1”.",
      generation: "Max new tokens must be at least 1. Temperature must be a number ≥ 0, not “hot”.",
    });
    expect(buildCreateBody({ ...form, versions: ["1", "2", "3", "4", "5", "6", "7", "8", "9"] }).errors).toEqual({ versions: "Choose at most 8 versions (9 chosen)." });
    expect(buildCreateBody({ ...form, limit: "ten" }).errors).toEqual({ limit: "Limit must be a whole number, not “ten”." });
    expect(buildCreateBody({ ...form, seed: String(2 ** 31) }).errors).toEqual({ seed: "Seed must be 0..2147483647." });
  });
});

describe("mapCreateErrors", () => {
  it("puts each error of a 400 at its field and the rest at the top", () => {
    const error = new ApiError(400, "versions: ...", {
      versions: ["each version once"],
      "versions[1]": ["there is no model version 99 you can use in project 7"],
      template: ["project 7 has no default prompt template; name one"],
      generation: { temperature: ["Must be positive."] },
      "generation.top_k": ["Too big."],
      colour: ["Unknown field."],
      non_field_errors: ["The dataset has no test rows."],
    });
    expect(mapCreateErrors(error)).toEqual({
      versions: "each version once there is no model version 99 you can use in project 7",
      template: "project 7 has no default prompt template; name one",
      generation: "temperature: Must be positive. Too big.",
      "": "colour: Unknown field. The dataset has no test rows.",
    });
  });

  it("shows a refusal without fields at the top", () => {
    expect(mapCreateErrors(new ApiError(403, "You need the admin role in project 7."))).toEqual({ "": "You need the admin role in project 7." });
  });
});
