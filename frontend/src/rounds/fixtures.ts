/** Rounds and guard reports as the API answers them (a two-round loop whose RLHF run was hacked), for the unit tests. */
import type { GuardReport, Round } from "./types";

export const HACKED_GUARD: GuardReport = {
  run: 3,
  samples: 20,
  before: { n: 20, user_turn_rate: 0, refusal_rate: 0.5, mean_words: 5.5 },
  after: { n: 20, user_turn_rate: 0.3, refusal_rate: 0.7, mean_words: 6.3 },
  reward: { before: 1, after: 0.5 },
  heldout_reward: { before: 0.29999999999999993, after: 0.10000000000000002 },
  groups: {
    harmless: { n: 10, refusal_rate_before: 1, refusal_rate_after: 0.7 },
    helpful: { n: 10, refusal_rate_before: 0, refusal_rate_after: 0.7 },
  },
  people: {
    best: { comparisons: 4, votes: 8, policy_win_rate: 0, low: 0, high: 0.32440756488388023 },
    worst: { comparisons: 4, votes: 0, policy_win_rate: null, low: null, high: null },
  },
  flags: [
    { code: "writes_user_turn", message: "30% of the policy's answers go on with the user's next turn (the reference: 0%)." },
    { code: "refuses", message: "70% of the policy's answers refuse (the reference: 50%)." },
    { code: "over_refusal", message: "it refuses 70% of the helpful prompts (before: 0%; harmless prompts: 70%)." },
    { code: "heldout_reward_flat", message: "the reward rose but the held-out reward model's did not (0.300 -> 0.100)." },
    { code: "humans_disagree", message: "the reward rose but people prefer the policy in only 0% of 8 votes." },
  ],
};

export const EMPTY_GUARD: GuardReport = {
  run: 9,
  samples: 0,
  before: { n: 0, user_turn_rate: null, refusal_rate: null, mean_words: null },
  after: { n: 0, user_turn_rate: null, refusal_rate: null, mean_words: null },
  reward: { before: null, after: null },
  heldout_reward: { before: null, after: null },
  groups: {},
  people: {
    best: { comparisons: 0, votes: 0, policy_win_rate: null, low: null, high: null },
    worst: { comparisons: 0, votes: 0, policy_win_rate: null, low: null, high: null },
  },
  flags: [],
};

export const ROUND_1: Round = {
  id: 1,
  number: 1,
  project: 1,
  previous: null,
  base_version: { id: 1, model: "policy", number: 1, label: "policy v1" },
  note: "first pass",
  created_at: "2026-12-03T13:37:20.689836Z",
  generation_run: 1,
  runs: [
    { id: 1, kind: "generate", state: "succeeded", metrics: {} },
    { id: 2, kind: "reward_model", state: "succeeded", metrics: { eval_accuracy: 0.71 } },
    { id: 3, kind: "rlhf", state: "succeeded", metrics: { eval_heldout_reward_before: 0.3, eval_heldout_reward_after: 0.1, eval_kl_after: 0.05 } },
  ],
  labeling: { comparisons: 4, rankings: 8, pairs: 8, agreement: 1, agreement_pairs: 4 },
  reward_model: { run: 2, eval_accuracy: 0.71, eval_mean_margin: 0.4 },
  policy: { run: 3, kind: "rlhf", eval_heldout_reward_before: 0.3, eval_heldout_reward_after: 0.1, eval_reward_gain_low: 2, eval_kl_after: 0.05 },
  versions: [{ id: 2, model: "policy-rlhf", number: 1, label: "policy-rlhf v1" }],
  snapshots: [3],
  evaluations: [1],
  human_win_rate: { evaluation: 1, version: 2, against: 1, criterion: "overall", win_rate: 0.25, low: 0.05998970468842124, high: 0.6351774392626615, n: 6 },
  guard_samples: {},
  guard: HACKED_GUARD,
};

export const ROUND_2: Round = {
  id: 2,
  number: 2,
  project: 1,
  previous: 1,
  base_version: { id: 2, model: "policy-rlhf", number: 1, label: "policy-rlhf v1" },
  note: "",
  created_at: "2026-12-03T13:37:21.381427Z",
  generation_run: 6,
  runs: [{ id: 6, kind: "generate", state: "queued", metrics: {} }],
  labeling: { comparisons: 0, rankings: 0, pairs: 0, agreement: null, agreement_pairs: 0 },
  reward_model: null,
  policy: null,
  versions: [],
  snapshots: [],
  evaluations: [],
  human_win_rate: null,
  guard_samples: { run: 3, best: [8, 9, 10, 11], worst: [12, 13, 14, 15] },
  guard: null,
};
