import { describe, expect, it } from "vitest";
import {
  board,
  buildPayload,
  commandForKey,
  fromSaved,
  initRanking,
  isComplete,
  letter,
  missing,
  missingSummary,
  rankingReducer,
  tieRank,
  toSaved,
  type RankingAction,
  type RankingState,
} from "./ranking";

const run = (state: RankingState, ...actions: RankingAction[]) => actions.reduce(rankingReducer, state);
const marks = (state: RankingState, order = state.active) => state.orders[order].marks;
/** What the keyboard does: map each key, then apply it the way the workspace does. */
function keys(state: RankingState, ...pressed: string[]): RankingState {
  for (const key of pressed) {
    const command = commandForKey({ key }, state.k);
    if (!command) continue;
    if (command.type === "rank") state = rankingReducer(state, { type: "rank", rank: command.rank, advance: true });
    else if (command.type === "fail" || command.type === "tie") state = rankingReducer(state, { type: command.type, advance: true });
    else if (command.type === "clear") state = rankingReducer(state, { type: "clear" });
    else if (command.type === "undo") state = rankingReducer(state, { type: "undo" });
    else if (command.type === "next" || command.type === "prev")
      state = rankingReducer(state, { type: "move", delta: command.type === "next" ? 1 : -1 });
    else if (command.type === "nextCriterion" || command.type === "prevCriterion")
      state = rankingReducer(state, { type: "cycleCriterion", delta: command.type === "nextCriterion" ? 1 : -1 });
  }
  return state;
}

describe("ranks", () => {
  it("starts empty with the first completion selected", () => {
    const s = initRanking(3);
    expect(marks(s)).toEqual([null, null, null]);
    expect(s.selected).toBe(0);
    expect(s.orders).toHaveLength(1);
    expect(isComplete(s)).toBe(false);
    expect(letter(0) + letter(2)).toBe("AC");
  });

  it("gives rank r to completion i and selects it", () => {
    const s = run(initRanking(3), { type: "rank", rank: 2, index: 1 });
    expect(marks(s)).toEqual([null, 2, null]);
    expect(s.selected).toBe(1);
  });

  it("ranks the selected completion by default and advances to the next unmarked one", () => {
    const s = run(initRanking(3), { type: "rank", rank: 2, advance: true }, { type: "rank", rank: 1, advance: true });
    expect(marks(s)).toEqual([2, 1, null]);
    expect(s.selected).toBe(2);
  });

  it("advances past marked completions and wraps around", () => {
    let s = run(initRanking(4), { type: "rank", rank: 1, index: 1 }, { type: "select", index: 3 });
    s = run(s, { type: "rank", rank: 2, advance: true });
    expect(s.selected).toBe(0);
    s = run(s, { type: "rank", rank: 3, advance: true });
    expect(s.selected).toBe(2);
  });

  it("stays put when changing a mark of a complete order", () => {
    let s = keys(initRanking(3), "1", "2", "3");
    expect(s.selected).toBe(2);
    s = run(s, { type: "select", index: 1 }, { type: "rank", rank: 3, advance: true });
    expect(marks(s)).toEqual([1, 3, 3]);
    expect(s.selected).toBe(1);
  });

  it("ignores ranks out of 1..K and indexes out of range", () => {
    const s = initRanking(3);
    expect(run(s, { type: "rank", rank: 4 })).toBe(s);
    expect(run(s, { type: "rank", rank: 0 })).toBe(s);
    expect(run(s, { type: "rank", rank: 1, index: 3 })).toBe(s);
    expect(run(s, { type: "select", index: -1 })).toBe(s);
  });

  it("allows gaps and equal ranks", () => {
    const s = run(initRanking(3), { type: "rank", rank: 1, index: 0 }, { type: "rank", rank: 3, index: 1 }, { type: "rank", rank: 1, index: 2 });
    expect(marks(s)).toEqual([1, 3, 1]);
    expect(isComplete(s)).toBe(true);
  });

  it("moves the selection with wrap-around", () => {
    const s = initRanking(3);
    expect(run(s, { type: "move", delta: -1 }).selected).toBe(2);
    expect(run(s, { type: "move", delta: 1 }, { type: "move", delta: 1 }, { type: "move", delta: 1 }).selected).toBe(0);
  });
});

describe("ties", () => {
  it("gives the selected completion the last rank given", () => {
    const s = keys(initRanking(3), "1", "t", "2");
    expect(marks(s)).toEqual([1, 1, 2]);
  });

  it("repeats the last rank even when it was not given to the previous completion", () => {
    let s = run(initRanking(4), { type: "rank", rank: 3, index: 2 }, { type: "select", index: 0 });
    s = run(s, { type: "tie" });
    expect(marks(s)).toEqual([3, null, 3, null]);
  });

  it("without a last rank, ties with the nearest ranked completion (restored state)", () => {
    const s = fromSaved(3, null, { k: 3, criteria: null, marks: [[2, null, null]], active: 0, selected: 1 });
    expect(tieRank(s)).toBe(2);
    expect(marks(run(s, { type: "tie" }))).toEqual([2, 2, null]);
  });

  it("does nothing when nothing is ranked yet", () => {
    const s = initRanking(3);
    expect(tieRank(s)).toBeNull();
    expect(run(s, { type: "tie" })).toBe(s);
  });

  it("does not count F as a rank to tie with", () => {
    const s = keys(initRanking(3), "2", "f", "t");
    expect(marks(s)).toEqual([2, "F", 2]);
  });
});

describe("F marks", () => {
  it("marks F instead of a rank and toggles it off again", () => {
    let s = run(initRanking(3), { type: "rank", rank: 1, index: 0 }, { type: "fail", index: 0 });
    expect(marks(s)).toEqual(["F", null, null]);
    s = run(s, { type: "fail", index: 0 });
    expect(marks(s)).toEqual([null, null, null]);
  });

  it("advances after marking F from the keyboard, but not after unmarking", () => {
    let s = keys(initRanking(3), "f");
    expect(s.selected).toBe(1);
    s = keys(s, "k", "f");
    expect(marks(s)[0]).toBeNull();
    expect(s.selected).toBe(0);
  });

  it("an all-F order is complete", () => {
    expect(isComplete(keys(initRanking(2), "f", "f"))).toBe(true);
  });
});

describe("clear and undo", () => {
  it("clears one mark, and a whole order", () => {
    let s = keys(initRanking(3), "1", "2", "3", "x");
    expect(marks(s)).toEqual([1, 2, null]);
    s = run(s, { type: "clearAll" });
    expect(marks(s)).toEqual([null, null, null]);
    expect(s.selected).toBe(0);
  });

  it("undoes one change at a time, restoring the selection", () => {
    let s = keys(initRanking(3), "2", "3");
    expect(marks(s)).toEqual([2, 3, null]);
    s = keys(s, "u");
    expect(marks(s)).toEqual([2, null, null]);
    expect(s.selected).toBe(1);
    s = keys(s, "1", "3");
    expect(marks(s)).toEqual([2, 1, 3]);
    s = run(s, { type: "undo" }, { type: "undo" }, { type: "undo" });
    expect(marks(s)).toEqual([null, null, null]);
    expect(run(s, { type: "undo" })).toBe(s);
  });

  it("undoes a clear-all", () => {
    const s = run(keys(initRanking(2), "1", "2"), { type: "clearAll" }, { type: "undo" });
    expect(marks(s)).toEqual([1, 2]);
  });

  it("does not record history for a change that changes nothing or for moves", () => {
    const s = keys(initRanking(3), "1");
    const same = run(s, { type: "rank", rank: 1, index: 0 }, { type: "move", delta: 1 }, { type: "select", index: 2 });
    expect(same.history).toHaveLength(1);
  });

  it("undoes the last change the tie repeated", () => {
    const s = keys(initRanking(3), "2", "u", "t");
    expect(marks(s)).toEqual([null, null, null]);
  });
});

describe("per-criterion orders", () => {
  const criteria = [11, 12];

  it("keeps one order per criterion and switches the active one", () => {
    let s = initRanking(3, criteria);
    expect(s.orders).toHaveLength(2);
    s = run(s, { type: "rank", rank: 1, index: 0 }, { type: "cycleCriterion", delta: 1 }, { type: "rank", rank: 3, index: 0 });
    expect(marks(s, 0)).toEqual([1, null, null]);
    expect(marks(s, 1)).toEqual([3, null, null]);
    expect(run(s, { type: "cycleCriterion", delta: 1 }).active).toBe(0);
    expect(run(s, { type: "criterion", index: 0 }).active).toBe(0);
    expect(run(s, { type: "criterion", index: 5 })).toBe(s);
  });

  it("moves on to the next incomplete criterion when the keyboard completes one", () => {
    let s = keys(initRanking(3, criteria), "2", "1", "3");
    expect(s.active).toBe(1);
    expect(s.selected).toBe(0);
    s = keys(s, "1", "t", "f");
    expect(marks(s, 0)).toEqual([2, 1, 3]);
    expect(marks(s, 1)).toEqual([1, 1, "F"]);
    expect(isComplete(s)).toBe(true);
    expect(s.active).toBe(1);
  });

  it("undo returns to the criterion it changed", () => {
    const s = keys(initRanking(2, criteria), "1", "2", "u");
    expect(s.active).toBe(0);
    expect(marks(s, 0)).toEqual([1, null]);
  });

  it("a single-order state ignores criterion switching", () => {
    const s = initRanking(3);
    expect(run(s, { type: "cycleCriterion", delta: 1 })).toBe(s);
  });
});

describe("validity", () => {
  it("lists what is missing, per criterion", () => {
    const s = run(initRanking(3, [1, 2]), { type: "rank", rank: 1, index: 0 });
    expect(missing(s)).toEqual([
      { order: 0, index: 1 },
      { order: 0, index: 2 },
      { order: 1, index: 0 },
      { order: 1, index: 1 },
      { order: 1, index: 2 },
    ]);
    expect(missingSummary(s, ["Helpful", "Harmless"])).toBe(
      "5 completions still need a rank or F: B, C (Helpful); A, B, C (Harmless).",
    );
    expect(missingSummary(keys(initRanking(2), "1"))).toBe("1 completion still needs a rank or F: B.");
    expect(missingSummary(keys(initRanking(2), "1", "2"))).toBe("");
  });
});

describe("payload", () => {
  it("builds {ranks, failed, comment, time_spent_ms} keyed by completion id", () => {
    const s = keys(initRanking(3), "2", "f", "1");
    expect(buildPayload(s, [101, 102, 103], { comment: "ok", timeSpentMs: 1234.6 })).toEqual({
      ranks: { "101": 2, "103": 1 },
      failed: [102],
      comment: "ok",
      time_spent_ms: 1235,
    });
  });

  it("builds {criteria: {id: {ranks, failed}}} for per-criterion projects", () => {
    const s = keys(initRanking(2, [7, 9]), "1", "2", "f", "1");
    expect(buildPayload(s, [5, 6], { timeSpentMs: 10 })).toEqual({
      criteria: { "7": { ranks: { "5": 1, "6": 2 }, failed: [] }, "9": { ranks: { "6": 1 }, failed: [5] } },
      comment: "",
      time_spent_ms: 10,
    });
  });

  it("refuses an incomplete ranking or the wrong number of ids", () => {
    expect(() => buildPayload(keys(initRanking(3), "1"), [1, 2, 3], { timeSpentMs: 0 })).toThrow(/rank or an F/);
    expect(() => buildPayload(keys(initRanking(2), "1", "2"), [1, 2, 3], { timeSpentMs: 0 })).toThrow(/expected 2/);
  });

  it("clamps the time spent to what the server accepts", () => {
    const s = keys(initRanking(2), "1", "2");
    expect(buildPayload(s, [1, 2], { timeSpentMs: -5 }).time_spent_ms).toBe(0);
    expect(buildPayload(s, [1, 2], { timeSpentMs: 1e12 }).time_spent_ms).toBe(86_400_000);
  });
});

describe("board", () => {
  it("arranges completions per rank, F and unmarked", () => {
    const s = run(initRanking(4), { type: "rank", rank: 1, index: 2 }, { type: "rank", rank: 1, index: 0 }, { type: "fail", index: 3 });
    expect(board(s.orders[0], 4)).toEqual({ byRank: [[0, 2], [], [], []], failed: [3], unmarked: [1] });
  });
});

describe("saved state", () => {
  it("round-trips marks, active order and selection", () => {
    const s = run(keys(initRanking(3, [1, 2]), "1", "2", "3", "f"), { type: "select", index: 2 });
    const back = fromSaved(3, [1, 2], JSON.parse(JSON.stringify(toSaved(s))));
    expect(back.orders.map((o) => o.marks)).toEqual(s.orders.map((o) => o.marks));
    expect(back.active).toBe(1);
    expect(back.selected).toBe(2);
    expect(back.history).toEqual([]);
  });

  it("falls back to an empty state when the saved one does not fit", () => {
    const saved = toSaved(keys(initRanking(3), "1"));
    expect(fromSaved(4, null, saved).orders[0].marks).toEqual([null, null, null, null]);
    expect(fromSaved(3, [1], saved).criteria).toEqual([1]);
    expect(fromSaved(3, [1], saved).orders[0].marks).toEqual([null, null, null]);
    expect(fromSaved(3, null, { ...saved, marks: [[1, 9, null]] }).orders[0].marks).toEqual([null, null, null]);
    expect(fromSaved(3, null, "garbage").orders[0].marks).toEqual([null, null, null]);
    expect(fromSaved(3, null, null).orders[0].marks).toEqual([null, null, null]);
  });
});

describe("keyboard mapping", () => {
  it("maps digits 1..K to ranks and ignores larger ones", () => {
    expect(commandForKey({ key: "1" }, 3)).toEqual({ type: "rank", rank: 1 });
    expect(commandForKey({ key: "3" }, 3)).toEqual({ type: "rank", rank: 3 });
    expect(commandForKey({ key: "4" }, 3)).toBeNull();
    expect(commandForKey({ key: "9" }, 9)).toEqual({ type: "rank", rank: 9 });
  });

  it("maps the letters, arrows and symbols of the help overlay", () => {
    const k = 3;
    const type = (key: string, extra = {}) => commandForKey({ key, ...extra }, k)?.type ?? null;
    expect(type("f")).toBe("fail");
    expect(type("F")).toBe("fail");
    expect(type("t")).toBe("tie");
    expect(type("x")).toBe("clear");
    expect(type("0")).toBe("clear");
    expect(type("Backspace")).toBe("clear");
    expect(type("u")).toBe("undo");
    expect(type("z", { ctrlKey: true })).toBe("undo");
    expect(type("z", { metaKey: true })).toBe("undo");
    expect(type("ArrowRight")).toBe("next");
    expect(type("j")).toBe("next");
    expect(type("ArrowLeft")).toBe("prev");
    expect(type("k")).toBe("prev");
    expect(type("Enter")).toBe("submit");
    expect(type("s")).toBe("skip");
    expect(type("c")).toBe("comment");
    expect(type("]")).toBe("nextCriterion");
    expect(type("[")).toBe("prevCriterion");
    expect(type("i")).toBe("instructions");
    expect(type("?")).toBe("help");
    expect(type("Escape")).toBe("escape");
  });

  it("leaves browser shortcuts alone", () => {
    expect(commandForKey({ key: "r", ctrlKey: true }, 3)).toBeNull();
    expect(commandForKey({ key: "c", ctrlKey: true }, 3)).toBeNull();
    expect(commandForKey({ key: "1", altKey: true }, 3)).toBeNull();
    expect(commandForKey({ key: "ArrowLeft", altKey: true }, 3)).toBeNull();
    expect(commandForKey({ key: "Tab" }, 3)).toBeNull();
    expect(commandForKey({ key: " " }, 3)).toBeNull();
  });

  it("ranks K=3 in four keystrokes: 2 1 3 Enter", () => {
    const s = keys(initRanking(3), "2", "1", "3");
    expect(marks(s)).toEqual([2, 1, 3]);
    expect(isComplete(s)).toBe(true);
    expect(commandForKey({ key: "Enter" }, 3)).toEqual({ type: "submit" });
  });
});
