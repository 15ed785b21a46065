/** Shapes of the admin APIs the console reads (see labeling/apis/*.py and /api/schema/). */
import type { Role } from "../api";

export type Member = { id: number; user: number; username: string; role: Role; created_at: string };

export type Dataset = {
  id: number;
  name: string;
  source_filename: string;
  fields: string[];
  row_count: number;
  split_counts: Record<string, number>;
  created_by: number | null;
  created_at: string;
};

export type PromptRow = { id: number; index: number; split: string; data: Record<string, unknown> };

export type Template = {
  id: number;
  name: string;
  dataset: number | null;
  text: string;
  example_text: string;
  examples: Record<string, unknown>[];
  example_separator: string;
  is_default: boolean;
  created_at: string;
};

export type Preview = {
  prompt: string;
  token_estimate: number;
  fields_used: string[];
  context_window: number;
  warning: string | null;
  row_id: number | null;
};

export type StatsLabeler = {
  labeler: number;
  username: string;
  rankings: number;
  skipped: number;
  throughput_per_hour: number | null;
  median_seconds_per_task: number | null;
  gold_accuracy: number | null;
  gold_pairs: number;
  consensus_agreement: number | null;
  consensus_pairs: number;
};

export type Stats = {
  project: number;
  criterion: number | null;
  sources: string[];
  progress: {
    overlap: number;
    comparisons_total: number;
    complete: number;
    in_progress: number;
    not_started: number;
    gold_total: number;
    rankings_total: number;
    skipped: number;
    live_leases: number;
  };
  agreement: {
    items: number;
    shared_items: number;
    pairwise_rate: number | null;
    pairwise_agreements: number;
    pairwise_pairs: number;
    pairwise_one_sided_ties: number;
    kendall_tau_b: number | null;
    kendall_tau_b_cases: number;
    kendall_tau_b_undefined: number;
    krippendorff_alpha_ordinal: number | null;
    krippendorff_units: number;
    krippendorff_values: number;
  } | null;
  labelers: StatsLabeler[];
};

export type Bucket = "hour" | "day";

export type TimelineBucket = {
  start: string;
  end: string;
  rankings: number;
  completed: number;
  shared_items: number;
  pairwise_rate: number | null;
  pairwise_pairs: number;
  alpha_computed: boolean;
  krippendorff_alpha_ordinal: number | null;
  krippendorff_units: number | null;
};

export type Timeline = {
  project: number;
  bucket: Bucket;
  timezone: string;
  criterion: number | null;
  sources: string[];
  overlap: number;
  comparisons_total: number;
  complete: number;
  buckets: TimelineBucket[];
  labelers: { labeler: number; username: string; rankings: number; per_bucket: number[] }[];
  rank_distribution: { levels: string[]; positions: { position: number; orders: number; counts: number[] }[] };
};

export type SnapshotStatus = "pending" | "building" | "ready" | "failed";

export type Snapshot = {
  id: number;
  project: number;
  version: number;
  status: SnapshotStatus;
  options: Record<string, unknown>;
  counts: Record<string, unknown> & { pairs?: number; by_split?: Record<string, number> };
  error: string;
  created_by: number | null;
  created_at: string;
  finished_at: string | null;
  downloads: Record<string, Record<string, string>>;
  hf_download: string | null; // the whole snapshot as a Hugging Face dataset folder (a tar); null for older snapshots
};
