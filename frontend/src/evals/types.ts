/** Shapes of the side-by-side evaluation API (contract: /work/notes/EVAL_API.md; labeling app). */
import type { Project } from "../api";

/** Projects as GET /api/projects/ lists them; evaluation projects carry kind "evaluation". */
export type ProjectWithKind = Project & { kind?: string };

export type EvalStatus = "generating" | "labeling" | "complete" | "failed";

/** One compared model version: its generate run and how many answers it has written. */
export type Entry = {
  id: number;
  version: number;
  label: string;
  model: string;
  number: number;
  run: number | null;
  run_state: string | null;
  /** Answers stored so far (null where the server did not count them). */
  samples: number | null;
};

export type EvalProgress = {
  prompts: number;
  pairs_expected: number;
  comparisons: number;
  labels: number;
  labels_needed: number;
  complete: number;
  overlap: number;
};

/** GET /api/evaluations/{id}/ */
export type Evaluation = {
  id: number;
  name: string;
  /** The evaluation project (labelers label it at /projects/{project}/label). */
  project: number;
  source_project: number | null;
  dataset: number | null;
  /** "train" | "eval" | "test", or "" (or null) for every split. */
  split: string | null;
  seed: number;
  status: EvalStatus;
  created_at: string;
  published_at: string | null;
  entries: Entry[];
  progress: EvalProgress;
};

export type CriterionRef = { id: number | null; name: string };

/** Bradley-Terry score of an entry on the Elo scale (mean 1000) with its 95% bootstrap interval;
 * score and rank are null for an entry no vote has touched, low/high when no resample had it. */
export type Score = { entry: number; score: number | null; low: number | null; high: number | null; rank: number | null; votes: number };

/** A score the plot and the table can place. */
export type Scored = Score & { score: number; rank: number };

/** How often `a` beat `b`: (wins + (ties + both_bad) / 2) / n, with a Wilson 95% interval. */
export type Pair = {
  a: number;
  b: number;
  wins: number;
  losses: number;
  ties: number;
  both_bad: number;
  n: number;
  win_rate: number;
  low: number;
  high: number;
};

/** Share of votes the longer answer won, for one band of length difference [min_words, max_words)
 * in words; max_words is exclusive, null for the open last band. */
export type LengthBin = { min_words: number; max_words: number | null; longer_wins: number; low: number; high: number; n: number };

export type LengthBias = { longer_wins: number | null; low: number | null; high: number | null; n: number; bins: LengthBin[] };

export type Verdict = {
  criterion: number | null;
  name: string;
  votes: number;
  comparisons: number;
  scores: Score[];
  pairs: Pair[];
  length_bias: LengthBias;
};

/** How often the AI judge picked the humans' winner. */
export type Agreement = { criterion: number | null; name: string; n: number; agree: number; rate: number | null; low: number | null; high: number | null };

/** GET /api/evaluations/{id}/results/ */
export type Results = {
  evaluation: number;
  entries: Entry[];
  criteria: CriterionRef[];
  human: Verdict[];
  ai: Verdict[];
  agreement: Agreement[];
};

/** POST /api/projects/{source}/evaluations/ */
export type EvalCreateBody = {
  name?: string;
  versions: number[];
  dataset: number;
  split: "train" | "eval" | "test" | null;
  limit: number;
  template?: number;
  generation?: Record<string, number>;
  seed?: number;
  /** A round of the source project the evaluation joins. */
  round?: number;
};
