/** Shapes of the labeling endpoints the workspace reads (see labeling/apis/labeling.py, stats.py). */

export type LeaseCompletion = { id: number; position: number; text: string };

/** GET /api/projects/{id}/next/ (200): my live lease, or a new one. */
export type Lease = {
  assignment: { id: number; created_at: string; expires_at: string };
  comparison: { id: number; prompt: string };
  completions: LeaseCompletion[];
};

/** The parts of GET /api/projects/{id}/stats/ the workspace shows (a labeler gets their own row). */
export type LabelerStats = {
  progress: { comparisons_total: number; complete: number; in_progress: number; not_started: number };
  labelers: { labeler: number; rankings: number; skipped: number }[];
};
