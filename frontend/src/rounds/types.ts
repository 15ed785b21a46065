/** Shapes of the rounds API and the reward-hacking guard (training/apis_rounds.py: RoundOutput,
 * GuardOutput; training/selectors_rounds.py says what each figure means). */

/** A registered model version as a round names it: "policy v3". */
export type VersionRef = { id: number; model: string; number: number; label: string };

/** One run of a round, with the figures of its result (training/selectors_rounds.py RUN_METRICS). */
export type RoundRun = { id: number; kind: string; state: string; metrics: Record<string, number> };

/** What the round's generation run collected: its comparisons and the human rankings on them. */
export type RoundLabeling = {
  comparisons: number;
  rankings: number;
  /** Strict pairs in the human rankings: the preference data collected. */
  pairs: number;
  /** Pairwise agreement between labelers (null with no pair two labelers ranked). */
  agreement: number | null;
  agreement_pairs: number;
};

/** The newest succeeded reward_model run of the round: its id and the figures it reported
 * (eval_accuracy, eval_mean_margin, ...; only those present). */
export type RewardModelSummary = { run: number; [metric: string]: number };

/** The newest succeeded rlhf or dpo run: its id, kind and the figures it reported
 * (eval_heldout_reward_before/after, eval_kl_after, kl_final, ...; only those present). */
export type PolicySummary = { run: number; kind: string; [metric: string]: number | string };

/** The newest linked evaluation's verdict on a version this round made against the round's base. */
export type HumanWinRate = {
  evaluation: number;
  version: number;
  against: number;
  criterion: string;
  win_rate: number;
  low: number;
  high: number;
  n: number;
};

/** The previous round's RLHF samples put back to labelers in this round: nothing ({}, the first
 * round), comparison ids per end, or why none were ("skipped"). */
export type GuardSamples = { run?: number; best?: number[]; worst?: number[]; skipped?: string };

/** Text figures of one side (the reference's answers, or the policy's). */
export type GuardSide = { n: number; user_turn_rate: number | null; refusal_rate: number | null; mean_words: number | null };

export type GuardGroup = { n: number; refusal_rate_before: number | null; refusal_rate_after: number | null };

/** People's votes on the policy's best- or worst-scored samples against the reference's answers. */
export type GuardPeople = { comparisons: number; votes: number; policy_win_rate: number | null; low: number | null; high: number | null };

export type GuardFlagCode = "writes_user_turn" | "refuses" | "over_refusal" | "heldout_reward_flat" | "humans_disagree";

export type GuardFlag = { code: GuardFlagCode | string; message: string };

/** GET /api/runs/{id}/guard/ (and a round's `guard`). */
export type GuardReport = {
  run: number;
  samples: number;
  before: GuardSide;
  after: GuardSide;
  reward: { before?: number | null; after?: number | null };
  heldout_reward: { before?: number | null; after?: number | null };
  groups: Record<string, GuardGroup>;
  people: { best?: GuardPeople; worst?: GuardPeople };
  flags: GuardFlag[];
};

/** GET /api/rounds/{id}/, and each item of GET /api/projects/{id}/rounds/ (a plain array). */
export type Round = {
  id: number;
  number: number;
  project: number;
  previous: number | null;
  base_version: VersionRef;
  note: string;
  created_at: string;
  generation_run: number | null;
  runs: RoundRun[];
  labeling: RoundLabeling;
  reward_model: RewardModelSummary | null;
  policy: PolicySummary | null;
  versions: VersionRef[];
  snapshots: number[]; // the preference snapshots the round's runs trained on
  evaluations: number[];
  human_win_rate: HumanWinRate | null;
  guard_samples: GuardSamples;
  guard: GuardReport | null;
};

/** POST /api/projects/{id}/rounds/ (RoundStartInput): a version, or a model and one of its aliases. */
export type RoundStartBody = {
  version?: number;
  model?: number;
  alias?: string;
  dataset: number;
  split?: "train" | "eval" | "test" | null;
  limit?: number;
  generation?: Record<string, number>;
  guard_samples?: number;
  note?: string;
};
