/** Shapes of the sweeps API (training/apis_sweeps.py: SweepOutput, SweepDetailOutput, SweepKindOutput,
 * SweepCreateInput). A sweep searches one run kind's config with Optuna; each trial is a run. */

export type SweepState = "running" | "succeeded" | "failed" | "cancelled";
export type SweepDirection = "maximize" | "minimize";
export type SweepSampler = "tpe" | "random";
export type SweepPruner = "median" | "none";

/** One field's range in a search space: a choice of values, or an int/float range (log: sampled on a log scale). */
export type ChoiceRange = { type: "choice"; values: unknown[] };
export type NumberRange = { type: "int" | "float"; low: number; high: number; log?: boolean; step?: number | null };
export type SpaceEntry = ChoiceRange | NumberRange;
/** Config field -> its range. */
export type SearchSpace = Record<string, SpaceEntry>;

/** GET /api/sweeps/ (a page of these), POST's 202 and the cancel answer. */
export type Sweep = {
  id: number;
  kind: string;
  state: SweepState;
  project: number | null;
  config: Record<string, unknown>;
  inputs: Record<string, unknown>;
  search_space: SearchSpace;
  metric: string;
  direction: SweepDirection;
  budget: number;
  parallelism: number;
  sampler: SweepSampler;
  seed: number | null;
  pruner: SweepPruner;
  alias: string;
  study_name: string;
  best_trial: number | null;
  best_value: number | null;
  best_run: number | null;
  best_version: number | null;
  /** Trials whose run was started. */
  trials_started: number;
  /** Trials whose run has not ended. */
  trials_live: number;
  error: string;
  created_by: number | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
};

/** The study's view of a trial. */
export type TrialState = "running" | "complete" | "pruned" | "failed" | "waiting";

/** One trial of GET /api/sweeps/{id}/, oldest first. */
export type SweepTrial = {
  number: number;
  state: TrialState;
  /** Searched field -> the trial's value (as the config takes it). */
  params: Record<string, unknown>;
  /** The metric, once the trial completed. */
  value: number | null;
  /** The metric as the run reported it while training, by step (what the pruner reads). */
  intermediate_values: { step: number; value: number }[];
  run: number | null;
  run_state: string | null;
  started_at: string | null;
  finished_at: string | null;
  /** The run's time so far, or in all. */
  duration_s: number | null;
  error: string;
};

/** The best completed trial so far. */
export type SweepBest = { trial: number; value: number; params: Record<string, unknown>; run: number | null; version: number | null };

/** GET /api/sweeps/{id}/ */
export type SweepDetail = Sweep & { trials: SweepTrial[]; best: SweepBest | null };

/** GET /api/sweeps/kinds/: a config field a search space may vary ("int" and "float" fields take a range). */
export type SweepField = { name: string; type: string; default: unknown };

/** GET /api/sweeps/kinds/: a kind a sweep may search, the metrics it reports, the fields it may vary. */
export type SweepKind = { kind: string; metrics: string[]; fields: SweepField[] };

/** POST /api/sweeps/ */
export type SweepStartBody = {
  kind: string;
  project: number;
  config: Record<string, unknown>;
  inputs: Record<string, unknown>;
  search_space: SearchSpace;
  metric: string;
  direction: SweepDirection;
  budget: number;
  parallelism: number;
  sampler: SweepSampler;
  pruner: SweepPruner;
  seed?: number;
  alias?: string;
};
