/**
 * Runs and evaluations join a round of the loop when they are started (POST /api/runs/ and POST
 * /api/projects/{id}/evaluations/ take an optional `round`: the id of a round of the same project).
 * The pure steps of the "Round" picker the start forms share, and what "in flight" means for the
 * rounds page (it refreshes itself while a round's run is queued or running). Unit-tested in
 * join.test.ts.
 */
import { isTerminal } from "../runs/runEvents";
import { roundName, sortRounds } from "./rounds";
import type { Round, RoundRun } from "./types";

/** "Round 2 · from policy-rlhf v1 · first pass" (a long note is cut). */
export function roundLabel(round: Pick<Round, "number" | "base_version" | "note">): string {
  const note = round.note.trim();
  const cut = note.length > 40 ? `${note.slice(0, 39)}…` : note;
  return [roundName(round), `from ${round.base_version.label}`, cut].filter(Boolean).join(" · ");
}

/** The picker's choices, newest round first (the one a new run most likely belongs to). */
export function roundChoices(rounds: Round[]): { value: string; label: string }[] {
  return sortRounds(rounds)
    .reverse()
    .map((r) => ({ value: String(r.id), label: roundLabel(r) }));
}

/** The `round` of a request body from the picker's value: none for "", the id otherwise. */
export function parseRound(value: string | undefined): { value: number | null } | { error: string } {
  const text = (value ?? "").trim();
  if (!text) return { value: null };
  if (!/^\d+$/.test(text) || Number(text) < 1) return { error: `Choose a round from the list, not “${text}”.` };
  return { value: Number(text) };
}

/** The runs of the rounds that are not finished yet: queued, running or cancelling. */
export function runsInFlight(rounds: Round[] | null | undefined): RoundRun[] {
  return (rounds ?? []).flatMap((r) => r.runs.filter((run) => !isTerminal(run.state)));
}
