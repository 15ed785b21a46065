import { describe, expect, it } from "vitest";
import { ApiError, type Principle } from "../api";
import { fieldErrors } from "../ui/format";
import {
  addPrinciple,
  aiFeedbackCounts,
  draftChanged,
  draftOf,
  errorsByUid,
  formatAgreement,
  letter,
  movePrinciple,
  orderSummary,
  pageRange,
  principleErrors,
  principleKeysOf,
  principlesOf,
  rankPositions,
  removePrinciple,
  updatePrinciple,
} from "./constitution";

const principle = (key: string): Principle => ({
  key,
  name: `Name ${key}`,
  critique_request: `Critique ${key}`,
  revision_request: `Revise ${key}`,
  choice_question: `Which is ${key}?`,
});

describe("principle drafts", () => {
  it("round-trips saved principles through a draft without the uids", () => {
    const saved = [principle("harm"), principle("help")];
    const draft = draftOf(saved);
    expect(new Set(draft.map((p) => p.uid)).size).toBe(2);
    expect(principlesOf(draft)).toEqual(saved);
    expect(draftChanged(draft, saved)).toBe(false);
  });

  it("adds an empty principle at the end and removes by index", () => {
    const draft = addPrinciple(draftOf([principle("harm")]));
    expect(draft).toHaveLength(2);
    expect(principlesOf(draft)[1]).toEqual({ key: "", name: "", critique_request: "", revision_request: "", choice_question: "" });
    const removed = removePrinciple(draft, 0);
    expect(removed).toHaveLength(1);
    expect(removed[0].uid).toBe(draft[1].uid);
    expect(removePrinciple(draft, 5)).toHaveLength(2);
  });

  it("moves a principle up and down, and ignores moves past either end", () => {
    const draft = draftOf([principle("a"), principle("b"), principle("c")]);
    expect(movePrinciple(draft, 2, -1).map((p) => p.key)).toEqual(["a", "c", "b"]);
    expect(movePrinciple(draft, 0, 1).map((p) => p.key)).toEqual(["b", "a", "c"]);
    expect(movePrinciple(draft, 0, -1).map((p) => p.key)).toEqual(["a", "b", "c"]);
    expect(movePrinciple(draft, 2, 1).map((p) => p.key)).toEqual(["a", "b", "c"]);
    expect(draft.map((p) => p.key)).toEqual(["a", "b", "c"]); // not mutated
  });

  it("edits one field of one principle and notices the change", () => {
    const saved = [principle("a"), principle("b")];
    const draft = updatePrinciple(draftOf(saved), 1, "critique_request", "");
    expect(draft[1].critique_request).toBe("");
    expect(draft[0]).toMatchObject(saved[0]);
    expect(draftChanged(draft, saved)).toBe(true);
    expect(draftChanged(draftOf(saved), null)).toBe(true);
    expect(draftChanged([], null)).toBe(false);
  });
});

describe("principleErrors", () => {
  it("puts a server error on the exact field of the exact card", () => {
    const error = new ApiError(400, "principles[2].critique_request: required", { "principles[2].critique_request": ["required"] });
    const { cards, list, other } = principleErrors(fieldErrors(error));
    expect(cards).toEqual({ 2: { critique_request: "required" } });
    expect(list).toBe("");
    expect(other).toBe("");
  });

  it("separates whole-card, list-level, unknown-field and other errors", () => {
    const split = principleErrors({
      "principles[0]": "must be an object",
      "principles[1].colour": "unknown field",
      "principles[1].key": "'Bad Key' is not a key",
      principles: "must be a non-empty list of principles",
      note: "too long",
      "": "Something else.",
    });
    expect(split.cards).toEqual({
      0: { "": "must be an object" },
      1: { "": "colour: unknown field", key: "'Bad Key' is not a key" },
    });
    expect(split.list).toBe("must be a non-empty list of principles");
    expect(split.other).toBe("note: too long Something else.");
  });

  it("keeps errors on their card when cards move afterwards", () => {
    const draft = draftOf([principle("a"), principle("b"), principle("c")]);
    const byUid = errorsByUid(draft, { 2: { critique_request: "required" }, 9: { key: "gone" } });
    expect(byUid).toEqual({ [draft[2].uid]: { critique_request: "required" } });
    const moved = movePrinciple(draft, 2, -1);
    expect(byUid[moved[1].uid]).toEqual({ critique_request: "required" });
  });
});

describe("rank positions", () => {
  it("turns scores into ranks, lower score better", () => {
    expect(rankPositions({ "11": 2, "12": 1, "13": 3 })).toEqual({
      "11": { rank: 2, tied: false, failed: false, label: "2" },
      "12": { rank: 1, tied: false, failed: false, label: "1" },
      "13": { rank: 3, tied: false, failed: false, label: "3" },
    });
  });

  it("gives ties the best rank they cover, and marks failed completions", () => {
    const ranks = rankPositions({ "1": 1.5, "2": 1.5, "3": 3, "4": "F" });
    expect([ranks["1"].label, ranks["2"].label, ranks["3"].label, ranks["4"].label]).toEqual(["=1", "=1", "3", "F"]);
    expect(ranks["4"]).toMatchObject({ failed: true, rank: null });
  });

  it("summarises an order best first in the completions' letters", () => {
    const completions = [
      { id: 12, position: 1 },
      { id: 11, position: 0 },
      { id: 13, position: 2 },
    ];
    expect(orderSummary({ "11": 2, "12": 1, "13": 3 }, completions)).toBe("B > A > C");
    expect(orderSummary({ "11": 1, "12": 1, "13": "F" }, completions)).toBe("A = B · F: C");
    expect(orderSummary({}, completions)).toBe("—");
  });

  it("letters completions A, B, ... Z, AA", () => {
    expect([0, 1, 25, 26, 27].map(letter)).toEqual(["A", "B", "Z", "AA", "AB"]);
  });
});

describe("audit and run formatting", () => {
  it("formats an agreement rate as a percentage with its pairs, or a dash", () => {
    expect(formatAgreement({ rate: 0.7333, pairs: 15 })).toEqual({ value: "73.3%", pairs: "15 pairs" });
    expect(formatAgreement({ rate: 1, pairs: 1 })).toEqual({ value: "100%", pairs: "1 pair" });
    expect(formatAgreement({ rate: null, pairs: 0 })).toEqual({ value: "—", pairs: "0 pairs" });
  });

  it("reads principle keys from a run's principle_counts", () => {
    expect(principleKeysOf({ principle_counts: { help: 4, harm: 7 } })).toEqual([
      { key: "harm", count: 7 },
      { key: "help", count: 4 },
    ]);
    expect(principleKeysOf({ principle_counts: ["harm"] })).toEqual([]);
    expect(principleKeysOf({})).toEqual([]);
    expect(principleKeysOf(null)).toEqual([]);
  });

  it("lists the ai_feedback counts that are present, in order", () => {
    expect(aiFeedbackCounts({ left_queue: 8, recorded: 10, spot_checks: 2, other: 1 }).map((c) => [c.key, c.value])).toEqual([
      ["recorded", 10],
      ["spot_checks", 2],
      ["left_queue", 8],
    ]);
    expect(aiFeedbackCounts({ recorded: "10" })).toEqual([]);
  });

  it("describes a page range", () => {
    expect(pageRange(20, 20, 95)).toBe("21–40 of 95");
    expect(pageRange(80, 15, 95)).toBe("81–95 of 95");
    expect(pageRange(0, 0, 0)).toBe("0 of 0");
  });
});
