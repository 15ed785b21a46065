/**
 * The decisions of the labeler's lease queue, as pure functions (no React, no DOM, no fetch), so
 * that useLeaseQueue.ts only wires them to state and requests and queue.test.ts can check them:
 * how a leased comparison is shown (restored marks included), what a failed submit or skip means,
 * and what each ranking key does to the ranking and says on the status line.
 */
import { ApiError, NetworkError, type Criterion, type Project } from "../api";
import {
  fromSaved,
  isComplete,
  letter,
  markLabel,
  rankingReducer,
  tieRank,
  type Command,
  type RankingAction,
  type RankingState,
} from "./ranking";
import type { SavedTask } from "./storage";
import type { LabelerStats, Lease } from "./types";

/** Retries of a submit, skip or next whose answer was lost: about 15 s in all. */
export const RETRY_DELAYS = [300, 1000, 2000, 4000, 8000];
/** The project-wide progress costs the server a scan of the rankings: refresh it at most this often. */
export const STATS_EVERY_MS = 30_000;
/** How long the first `s` waits for the second before the skip is disarmed. */
export const SKIP_CONFIRM_MS = 4000;

export type Phase = "loading" | "ready" | "done" | "failed";
/** The request in flight, if any: while one is, the ranking cannot change and nothing else is sent. */
export type Busy = null | "submit" | "skip" | "next";
export type Meta = { project: Project; criteria: Criterion[] };
export type Progress = { left: number; total: number; mine: number };

/** The sentence for a failed request. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  if (error instanceof NetworkError) return "Could not reach the server. Check your connection and try again.";
  return error instanceof Error ? error.message : String(error);
}

/** Local midnight of `now`, as the ISO string the rankings list's `since` takes. */
export function startOfToday(now: Date = new Date()): string {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString();
}

/** Criteria in the order the project gives them (position, then id). */
export function sortCriteria(criteria: Criterion[]): Criterion[] {
  return [...criteria].sort((a, b) => a.position - b.position || a.id - b.id);
}

/** The names of a ranking's criteria, in its order (empty for an overall ranking). */
export function criterionNames(state: RankingState, criteria: Criterion[]): string[] {
  return state.criteria?.map((id) => criteria.find((c) => c.id === id)?.name ?? `criterion ${id}`) ?? [];
}

export function progressOf(stats: LabelerStats): Progress {
  const p = stats.progress;
  return { left: Math.max(0, p.comparisons_total - p.complete), total: p.comparisons_total, mine: stats.labelers[0]?.rankings ?? 0 };
}

/**
 * A leased comparison as the workspace shows it: completions by position, one order per criterion
 * when the project ranks per criterion, and what a reload saved for this assignment (marks that
 * still fit, the comment, the start time unless it lies in the future).
 */
export function openLease(next: Lease, meta: Meta, saved: Partial<SavedTask> | null, now: number) {
  const completions = [...next.completions].sort((a, b) => a.position - b.position);
  const keys = meta.project.rank_per_criterion ? meta.criteria.map((c) => c.id) : null;
  return {
    lease: { ...next, completions },
    ranking: fromSaved(completions.length, keys, saved?.ranking),
    comment: typeof saved?.comment === "string" ? saved.comment : "",
    startedAt: typeof saved?.startedAt === "number" && saved.startedAt <= now ? saved.startedAt : now,
  };
}

/** The status line once the next comparison is shown, after `before` ("Saved.", "Skipped."...). */
export function readyStatus(before: string, comparisonId: number): string {
  return `${before} Comparison ${comparisonId} is ready: completion A is selected.`.trim();
}

/** The status line while a submit is sent (`attempt` counts from 1). */
export function sendingStatus(attempt: number): string {
  return attempt > 1 ? `The connection dropped — sending your ranking again (attempt ${attempt})…` : "Saving your ranking…";
}

/**
 * What a submit that failed for good means. `gone`: the lease expired and its slot went to someone
 * else (or it was skipped): say why and move on. `kept`: the ranking stays on screen to send again.
 */
export function submitFailure(error: unknown): { kind: "gone"; notice: string } | { kind: "kept"; error: string } {
  if (error instanceof ApiError && error.status === 409) return { kind: "gone", notice: error.detail };
  return {
    kind: "kept",
    error:
      error instanceof ApiError
        ? `The server refused this ranking: ${error.detail}`
        : "Could not reach the server after several tries. Your ranking is kept here: press Enter or Submit to send it again.",
  };
}

/** The error to show for a skip that failed, or null when the assignment is no longer ours anyway (409). */
export function skipFailure(error: unknown): string | null {
  if (error instanceof ApiError && error.status === 409) return null;
  return `Could not skip: ${errorMessage(error)}`;
}

/** The status line after a mark changed completion `index` of order `orderIndex`; `state` is the new ranking. */
export function markStatus(state: RankingState, orderIndex: number, index: number, names: string[]): string {
  const where = state.criteria ? `${names[orderIndex]}: ` : "";
  let text = `${where}${letter(index)}: ${markLabel(state.orders[orderIndex].marks[index])}.`;
  if (isComplete(state)) text += " All ranked — press Enter to submit.";
  else if (state.active !== orderIndex) text += ` ${names[orderIndex]} done; now ranking ${names[state.active]}, ${letter(state.selected)} selected.`;
  else text += ` ${letter(state.selected)} selected.`;
  return text;
}

function selectedStatus(state: RankingState): string {
  return `${letter(state.selected)} selected: ${markLabel(state.orders[state.active].marks[state.selected])}.`;
}

/**
 * What a command does while the comparison can be edited: `change` the ranking (and say so), only
 * `say` something, hand on a `submit`, `skip` or `comment`, or nothing (null). Help, instructions
 * and Escape are not ranking commands: they give null here.
 */
export type EditStep =
  | { type: "change"; next: RankingState; status: string }
  | { type: "say"; status: string }
  | { type: "submit" | "skip" | "comment" }
  | null;

export function editStep(state: RankingState, command: Command, names: string[]): EditStep {
  switch (command.type) {
    case "rank":
    case "fail":
    case "tie": {
      if (command.type === "tie" && tieRank(state) === null) return { type: "say", status: "Nothing to tie with yet: give a rank first." };
      const action: RankingAction =
        command.type === "rank" ? { type: "rank", rank: command.rank, advance: true } : { type: command.type, advance: true };
      const next = rankingReducer(state, action);
      return { type: "change", next, status: markStatus(next, state.active, state.selected, names) };
    }
    case "clear": {
      const next = rankingReducer(state, { type: "clear" });
      return { type: "change", next, status: markStatus(next, state.active, state.selected, names) };
    }
    case "undo": {
      if (!state.history.length) return { type: "say", status: "Nothing to undo." };
      const next = rankingReducer(state, { type: "undo" });
      return { type: "change", next, status: `Undone. ${selectedStatus(next)}` };
    }
    case "next":
    case "prev": {
      const next = rankingReducer(state, { type: "move", delta: command.type === "next" ? 1 : -1 });
      return { type: "change", next, status: selectedStatus(next) };
    }
    case "nextCriterion":
    case "prevCriterion": {
      if (!state.criteria || state.criteria.length < 2) return null;
      const next = rankingReducer(state, { type: "cycleCriterion", delta: command.type === "nextCriterion" ? 1 : -1 });
      return { type: "change", next, status: `Now ranking ${names[next.active]}.` };
    }
    case "submit":
    case "skip":
    case "comment":
      return { type: command.type };
    case "help":
    case "instructions":
    case "escape":
      return null;
  }
}
