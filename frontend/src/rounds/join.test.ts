import { describe, expect, it } from "vitest";
import { ROUND_1, ROUND_2 } from "./fixtures";
import { parseRound, roundChoices, roundLabel, runsInFlight } from "./join";
import type { Round } from "./types";

const round = (base: Round, extra: Partial<Round>): Round => ({ ...base, ...extra });

describe("the round picker", () => {
  it("names a round by number, base version and note, a long note cut", () => {
    expect(roundLabel(ROUND_1)).toBe("Round 1 · from policy v1 · first pass");
    expect(roundLabel(ROUND_2)).toBe("Round 2 · from policy-rlhf v1");
    const long = roundLabel(round(ROUND_2, { note: "x".repeat(60) }));
    expect(long).toBe(`Round 2 · from policy-rlhf v1 · ${"x".repeat(39)}…`);
  });

  it("offers the newest round first, by id", () => {
    expect(roundChoices([ROUND_1, ROUND_2])).toEqual([
      { value: "2", label: "Round 2 · from policy-rlhf v1" },
      { value: "1", label: "Round 1 · from policy v1 · first pass" },
    ]);
    expect(roundChoices([])).toEqual([]);
  });

  it("reads the picker's value: none for empty, the id, an error for anything else", () => {
    expect(parseRound("")).toEqual({ value: null });
    expect(parseRound(undefined)).toEqual({ value: null });
    expect(parseRound(" 4 ")).toEqual({ value: 4 });
    expect(parseRound("0")).toEqual({ error: "Choose a round from the list, not “0”." });
    expect(parseRound("two")).toEqual({ error: "Choose a round from the list, not “two”." });
  });
});

describe("runs in flight", () => {
  it("counts the runs of every round that are queued, running or cancelling", () => {
    expect(runsInFlight([ROUND_1, ROUND_2]).map((r) => r.id)).toEqual([6]);
    const busy = round(ROUND_1, {
      runs: [
        { id: 1, kind: "generate", state: "succeeded", metrics: {} },
        { id: 4, kind: "rlhf", state: "running", metrics: {} },
        { id: 5, kind: "dpo", state: "cancelling", metrics: {} },
        { id: 7, kind: "sft", state: "failed", metrics: {} },
        { id: 8, kind: "sft", state: "cancelled", metrics: {} },
      ],
    });
    expect(runsInFlight([busy]).map((r) => r.id)).toEqual([4, 5]);
  });

  it("is empty when every run is finished, with no rounds, or before the list arrives", () => {
    expect(runsInFlight([ROUND_1])).toEqual([]);
    expect(runsInFlight([round(ROUND_2, { runs: [] })])).toEqual([]);
    expect(runsInFlight([])).toEqual([]);
    expect(runsInFlight(null)).toEqual([]);
  });
});
