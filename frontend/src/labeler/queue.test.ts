import { describe, expect, it } from "vitest";
import { ApiError, NetworkError, type Criterion, type Project } from "../api";
import {
  criterionNames,
  editStep,
  errorMessage,
  markStatus,
  openLease,
  progressOf,
  readyStatus,
  sendingStatus,
  skipFailure,
  sortCriteria,
  startOfToday,
  submitFailure,
  type EditStep,
} from "./queue";
import { initRanking, rankingReducer, toSaved, type Command, type RankingAction, type RankingState } from "./ranking";
import type { Lease } from "./types";

const project = (rankPerCriterion = false) => ({ id: 1, name: "Summaries", instructions: "", rank_per_criterion: rankPerCriterion }) as Project;
const criterion = (id: number, name: string, position: number): Criterion => ({ id, name, instructions: "", position });
const helpful = criterion(7, "Helpfulness", 0);
const harmless = criterion(9, "Harmlessness", 1);

const lease: Lease = {
  assignment: { id: 41, created_at: "2025-03-01T10:00:00Z", expires_at: "2025-03-01T10:15:00Z" },
  comparison: { id: 5, prompt: "Say hi." },
  completions: [
    { id: 102, position: 2, text: "c" },
    { id: 100, position: 0, text: "a" },
    { id: 101, position: 1, text: "b" },
  ],
};

const run = (state: RankingState, ...actions: RankingAction[]) => actions.reduce(rankingReducer, state);
/** The new ranking of a step that changed it (fails the test for any other step). */
const changed = (step: EditStep): RankingState => {
  if (step?.type !== "change") throw new Error(`expected a change, got ${JSON.stringify(step)}`);
  return step.next;
};

describe("openLease", () => {
  it("orders the completions by position and starts a fresh overall ranking", () => {
    const opened = openLease(lease, { project: project(), criteria: [helpful] }, null, 1000);
    expect(opened.lease.completions.map((c) => c.id)).toEqual([100, 101, 102]);
    expect(lease.completions[0].id).toBe(102); // the server's answer is left alone
    expect(opened.ranking).toEqual(initRanking(3));
    expect(opened.comment).toBe("");
    expect(opened.startedAt).toBe(1000);
  });

  it("keeps one order per criterion when the project ranks per criterion", () => {
    const opened = openLease(lease, { project: project(true), criteria: [helpful, harmless] }, null, 1000);
    expect(opened.ranking.criteria).toEqual([7, 9]);
    expect(opened.ranking.orders).toHaveLength(2);
  });

  it("restores what a reload saved: marks, comment, start time", () => {
    const before = run(initRanking(3), { type: "rank", rank: 3 }, { type: "fail", index: 1 });
    const saved = { ranking: toSaved(before), comment: "hmm", startedAt: 400 };
    const opened = openLease(lease, { project: project(), criteria: [] }, saved, 1000);
    expect(opened.ranking.orders[0].marks).toEqual([3, "F", null]);
    expect(opened.comment).toBe("hmm");
    expect(opened.startedAt).toBe(400);
  });

  it("drops saved marks that do not fit, and a start time in the future", () => {
    const saved = { ranking: toSaved(run(initRanking(2), { type: "rank", rank: 1 })), comment: 3 as unknown as string, startedAt: 5000 };
    const opened = openLease(lease, { project: project(), criteria: [] }, saved, 1000);
    expect(opened.ranking).toEqual(initRanking(3));
    expect(opened.comment).toBe("");
    expect(opened.startedAt).toBe(1000);
  });
});

describe("criteria", () => {
  it("sorts by position, then id", () => {
    const sorted = sortCriteria([criterion(3, "c", 1), criterion(2, "b", 1), criterion(1, "a", 2), criterion(4, "d", 0)]);
    expect(sorted.map((c) => c.id)).toEqual([4, 2, 3, 1]);
  });

  it("names a ranking's criteria in its order, with a fallback for an unknown id", () => {
    expect(criterionNames(initRanking(2, [9, 7, 8]), [helpful, harmless])).toEqual(["Harmlessness", "Helpfulness", "criterion 8"]);
    expect(criterionNames(initRanking(2), [helpful])).toEqual([]);
  });
});

describe("request outcomes", () => {
  it("turns errors into sentences", () => {
    expect(errorMessage(new ApiError(403, "Not a labeler here."))).toBe("Not a labeler here.");
    expect(errorMessage(new NetworkError("reset"))).toMatch(/^Could not reach the server/);
    expect(errorMessage(new Error("boom"))).toBe("boom");
    expect(errorMessage("odd")).toBe("odd");
  });

  it("moves on from a submit the server answers 409, keeps the ranking otherwise", () => {
    expect(submitFailure(new ApiError(409, "Your lease expired."))).toEqual({ kind: "gone", notice: "Your lease expired." });
    expect(submitFailure(new ApiError(400, "bad ids"))).toEqual({ kind: "kept", error: "The server refused this ranking: bad ids" });
    const lost = submitFailure(new NetworkError("reset"));
    expect(lost.kind).toBe("kept");
    expect(lost.kind === "kept" && lost.error).toMatch(/Your ranking is kept here/);
  });

  it("treats a skip answered 409 as done, any other failure as an error", () => {
    expect(skipFailure(new ApiError(409, "gone"))).toBeNull();
    expect(skipFailure(new ApiError(500, "oops"))).toBe("Could not skip: oops");
    expect(skipFailure(new NetworkError("x"))).toMatch(/^Could not skip: Could not reach the server/);
  });

  it("says which attempt is being sent", () => {
    expect(sendingStatus(1)).toBe("Saving your ranking…");
    expect(sendingStatus(3)).toBe("The connection dropped — sending your ranking again (attempt 3)…");
  });

  it("announces the next comparison after what happened", () => {
    expect(readyStatus("Saved.", 12)).toBe("Saved. Comparison 12 is ready: completion A is selected.");
    expect(readyStatus("", 12)).toBe("Comparison 12 is ready: completion A is selected.");
  });

  it("reads the labeler's progress from the stats", () => {
    const stats = { progress: { comparisons_total: 10, complete: 4, in_progress: 1, not_started: 5 }, labelers: [{ labeler: 3, rankings: 6, skipped: 0 }] };
    expect(progressOf(stats)).toEqual({ left: 6, total: 10, mine: 6 });
    expect(progressOf({ ...stats, progress: { ...stats.progress, complete: 12 }, labelers: [] })).toEqual({ left: 0, total: 10, mine: 0 });
  });

  it("gives local midnight", () => {
    const iso = startOfToday(new Date(2025, 2, 1, 15, 30));
    expect(new Date(iso).getTime()).toBe(new Date(2025, 2, 1).getTime());
  });
});

describe("editStep", () => {
  const cmd = (command: Command, state: RankingState, names: string[] = []) => editStep(state, command, names);

  it("ranks the selected completion, moves on and says so", () => {
    const step = cmd({ type: "rank", rank: 2 }, initRanking(3));
    expect(changed(step).orders[0].marks).toEqual([2, null, null]);
    expect(step).toMatchObject({ status: "A: rank 2. B selected." });
  });

  it("says when everything is ranked", () => {
    const state = run(initRanking(2), { type: "rank", rank: 1, advance: true });
    expect(cmd({ type: "rank", rank: 2 }, state)).toMatchObject({ status: "B: rank 2. All ranked — press Enter to submit." });
  });

  it("ties only after a rank was given", () => {
    expect(cmd({ type: "tie" }, initRanking(3))).toEqual({ type: "say", status: "Nothing to tie with yet: give a rank first." });
    const step = cmd({ type: "tie" }, run(initRanking(3), { type: "rank", rank: 1, advance: true }));
    expect(changed(step).orders[0].marks).toEqual([1, 1, null]);
  });

  it("marks F, clears, and undoes with the matching words", () => {
    const failed = cmd({ type: "fail" }, initRanking(3));
    expect(failed).toMatchObject({ status: "A: F (nonsense / off-task). B selected." });
    const back = run(changed(failed), { type: "select", index: 0 });
    expect(cmd({ type: "clear" }, back)).toMatchObject({ status: "A: not ranked. A selected." });
    expect(cmd({ type: "undo" }, changed(failed))).toMatchObject({ status: "Undone. A selected: not ranked." });
    expect(cmd({ type: "undo" }, initRanking(3))).toEqual({ type: "say", status: "Nothing to undo." });
  });

  it("moves the selection, wrapping around", () => {
    const step = cmd({ type: "prev" }, initRanking(3));
    expect(changed(step).selected).toBe(2);
    expect(step).toMatchObject({ status: "C selected: not ranked." });
  });

  it("names the criterion it moves on to", () => {
    const names = ["Helpfulness", "Harmlessness"];
    const state = run(initRanking(2, [7, 9]), { type: "rank", rank: 1, advance: true });
    expect(cmd({ type: "rank", rank: 2 }, state, names)).toMatchObject({
      status: "Helpfulness: B: rank 2. Helpfulness done; now ranking Harmlessness, A selected.",
    });
    const step = cmd({ type: "nextCriterion" }, initRanking(2, [7, 9]), names);
    expect(changed(step).active).toBe(1);
    expect(step).toMatchObject({ status: "Now ranking Harmlessness." });
    expect(cmd({ type: "prevCriterion" }, initRanking(2, [7]), ["Helpfulness"])).toBeNull();
    expect(cmd({ type: "nextCriterion" }, initRanking(2))).toBeNull();
  });

  it("hands submit, skip and comment on, and leaves view commands alone", () => {
    const state = initRanking(2);
    expect(cmd({ type: "submit" }, state)).toEqual({ type: "submit" });
    expect(cmd({ type: "skip" }, state)).toEqual({ type: "skip" });
    expect(cmd({ type: "comment" }, state)).toEqual({ type: "comment" });
    for (const type of ["help", "instructions", "escape"] as const) expect(cmd({ type }, state)).toBeNull();
  });
});

describe("markStatus", () => {
  it("reports the mark of the completion that changed, not the one now selected", () => {
    const state = run(initRanking(3), { type: "rank", rank: 1, index: 2 }, { type: "select", index: 0 });
    expect(markStatus(state, 0, 2, [])).toBe("C: rank 1. A selected.");
  });
});
