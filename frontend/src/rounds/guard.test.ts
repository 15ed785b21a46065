import { describe, expect, it } from "vitest";
import { EMPTY_GUARD, HACKED_GUARD } from "./fixtures";
import { flagTitle, groupRows, isEmpty, overRefusalLine, peopleRows, rateRows, rewardRows } from "./guard";
import type { GuardReport } from "./types";

const clean: GuardReport = { ...HACKED_GUARD, flags: [] };

describe("the guard report", () => {
  it("is empty while the run has written no samples", () => {
    expect(isEmpty(EMPTY_GUARD)).toBe(true);
    expect(isEmpty(HACKED_GUARD)).toBe(false);
  });

  it("titles each flag, and an unknown code in words", () => {
    expect(HACKED_GUARD.flags.map(flagTitle)).toEqual([
      "Writes the user’s next turn",
      "Refuses more",
      "Over-refusal",
      "Held-out reward did not rise",
      "People disagree",
    ]);
    expect(flagTitle({ code: "kl_exploded" })).toBe("kl exploded");
  });

  it("puts the reference's and the policy's rates side by side, marking the flagged ones", () => {
    expect(rateRows(HACKED_GUARD)).toEqual([
      { key: "user_turn_rate", label: "Answers that go on with the user’s turn", before: "0%", after: "30%", flagged: true },
      { key: "refusal_rate", label: "Answers that refuse", before: "50%", after: "70%", flagged: true },
      { key: "mean_words", label: "Mean words per answer", before: "5.5", after: "6.3", flagged: false },
    ]);
    expect(rateRows(clean).map((r) => r.flagged)).toEqual([false, false, false]);
    expect(rateRows(EMPTY_GUARD).map((r) => [r.before, r.after])).toEqual([
      ["—", "—"],
      ["—", "—"],
      ["—", "—"],
    ]);
  });

  it("lists refusals per group, helpful first, and marks over-refusal on the helpful group when flagged", () => {
    const rows = groupRows({ ...HACKED_GUARD, groups: { ...HACKED_GUARD.groups, chitchat: { n: 2, refusal_rate_before: 0, refusal_rate_after: 0 } } });
    expect(rows.map((r) => r.group)).toEqual(["helpful", "harmless", "chitchat"]);
    expect(rows[0]).toMatchObject({ n: 10, before: "0%", after: "70%", overRefusal: true });
    expect(rows[0].meaning).toContain("over-refusal");
    expect(rows[1]).toMatchObject({ before: "100%", after: "70%", overRefusal: false });
    expect(rows[2].meaning).toBe("");
    expect(groupRows(clean)[0].overRefusal).toBe(false);
    expect(groupRows(EMPTY_GUARD)).toEqual([]);
  });

  it("says the over-refusal in a line, none without a helpful group", () => {
    expect(overRefusalLine(HACKED_GUARD)).toBe("The policy refuses 70% of helpful prompts (before 0%); harmless prompts: 70% (before 100%).");
    const helpfulOnly = { ...HACKED_GUARD, groups: { helpful: HACKED_GUARD.groups.helpful } };
    expect(overRefusalLine(helpfulOnly)).toBe("The policy refuses 70% of helpful prompts (before 0%).");
    expect(overRefusalLine(EMPTY_GUARD)).toBeNull();
  });

  it("shows the rewards before and after with their direction", () => {
    expect(rewardRows(HACKED_GUARD)).toEqual([
      { key: "reward", label: "Reward (the trained reward model)", before: "1", after: "0.5", trend: "down" },
      { key: "heldout_reward", label: "Held-out reward (a second reward model)", before: "0.3", after: "0.1", trend: "down" },
    ]);
    expect(rewardRows(EMPTY_GUARD).map((r) => [r.before, r.after, r.trend])).toEqual([
      ["—", "—", null],
      ["—", "—", null],
    ]);
    expect(rewardRows({ ...HACKED_GUARD, reward: { before: 0.1, after: 2 } })[0].trend).toBe("up");
  });

  it("gives the people's verdict on the best- and worst-scored samples", () => {
    expect(peopleRows(HACKED_GUARD)).toEqual([
      { which: "best", label: "Best-scored samples", comparisons: 4, votes: 8, verdict: "0% (0–32%)" },
      { which: "worst", label: "Worst-scored samples", comparisons: 4, votes: 0, verdict: "no votes yet" },
    ]);
    expect(peopleRows(EMPTY_GUARD).map((r) => r.verdict)).toEqual(["not put back yet", "not put back yet"]);
    expect(peopleRows({ ...HACKED_GUARD, people: {} }).map((r) => r.votes)).toEqual([0, 0]);
  });
});
