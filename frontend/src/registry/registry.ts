/**
 * Pure steps from the model registry's answers (GET /api/models/, GET /api/models/{id}/versions/,
 * models_registry/apis.py) to what the console's Models tab shows: aliases, the version a version
 * comes from, its source run, its scalar metrics in a line, and the human side-by-side evaluations
 * published on it (metrics.human_evals, written by labeling/services/side_by_side.py
 * evaluation_publish): Bradley-Terry score with its interval, rank, and the win rate against each
 * other version with its 95% interval. Unit-tested in registry.test.ts.
 */
import type { ModelVersion, RegisteredModel } from "../api";
import { formatShare } from "../evals/leaderboard";
import { formatNumber } from "../ui/scale";

/** GET /api/models/ as the registry serializes it (ModelOutput). */
export type RegistryModel = RegisteredModel & { project?: number | null; shared?: boolean };

/** GET /api/models/{id}/versions/ as the registry serializes it (ModelVersionOutput). */
export type RegistryVersion = ModelVersion & {
  artifact_path?: string;
  tokenizer?: string;
  size_bytes?: number | null;
  config_hash?: string;
  source_run_id?: number | null;
  source_role?: string;
  /** The project of the run that made it. */
  project?: number | null;
  source_snapshot_id?: number | null;
  metrics?: Record<string, unknown> | null;
  created_by?: string | null;
  download_url?: string;
};

/** One other version of an evaluation and how often this one beat it (ties count half). */
export type HumanAgainst = { version: number; label: string; win_rate: number; low: number | null; high: number | null; n: number };

/** One criterion (or "overall") of a published evaluation, as seen from this version. */
export type HumanCriterion = {
  criterion: string;
  score: number | null;
  low: number | null;
  high: number | null;
  rank: number | null;
  votes: number;
  against: HumanAgainst[];
};

/** One entry of metrics.human_evals. */
export type HumanEval = { evaluation: number; name: string; project: number | null; published_at: string | null; criteria: HumanCriterion[] };

const DASH = "—";

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function record(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** "candidate → v3, production → v2" from a model's {alias: version number}; "—" with none. */
export function formatModelAliases(aliases: Record<string, number> | null | undefined): string {
  const entries = Object.entries(aliases ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([alias, n]) => `${alias} → v${n}`).join(", ") : DASH;
}

/** "3 (latest v3)"; just the count when there is no latest. */
export function formatVersionCount(model: Pick<RegisteredModel, "version_count" | "latest_version">): string {
  return model.latest_version === null || model.latest_version === undefined ? String(model.version_count) : `${model.version_count} (latest v${model.latest_version})`;
}

/** A number for a metrics line: whole numbers as they are, others with 3 decimals at most (1 from 100
 * on), tiny ones in exponent form so they do not read as 0. */
export function formatMetricValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const size = Math.abs(value);
  if (size < 0.001) return value.toExponential(1);
  return formatNumber(value, size >= 100 ? 1 : 3);
}

/** The scalar numbers of a version's metrics (nested objects and lists such as human_evals are left
 * out), in the order the registry stored them. */
export function scalarMetrics(metrics: Record<string, unknown> | null | undefined): { key: string; value: number }[] {
  return Object.entries(metrics ?? {}).flatMap(([key, value]) => {
    const n = finite(value);
    return n === null ? [] : [{ key, value: n }];
  });
}

/** "eval_loss 0.412 · eval_accuracy 0.71" and how many more there are past `max`; "—" with none. */
export function formatMetrics(metrics: Record<string, unknown> | null | undefined, max = 6): { text: string; more: number; all: string } {
  const scalars = scalarMetrics(metrics).map(({ key, value }) => `${key} ${formatMetricValue(value)}`);
  if (scalars.length === 0) return { text: DASH, more: 0, all: "" };
  return { text: scalars.slice(0, max).join(" · "), more: Math.max(0, scalars.length - max), all: scalars.join(" · ") };
}

/**
 * The version this one comes from (its base, e.g. what an adapter was trained on): "v2" within the
 * same model, "tiny v2" when another model's version is known, else its id; null without a base.
 */
export function baseLabel(version: Pick<ModelVersion, "base_version" | "model">, known: Map<number, Pick<ModelVersion, "id" | "model" | "model_name" | "version">>): string | null {
  if (version.base_version === null || version.base_version === undefined) return null;
  const base = known.get(version.base_version);
  if (!base) return `version id ${version.base_version}`;
  return base.model === version.model ? `v${base.version}` : `${base.model_name} v${base.version}`;
}

/** The run that made a version: a link to its page in this project's console when the run is of
 * this project (a version's `project` is its run's), else only its id; null without a source run. */
export function sourceRun(version: Pick<RegistryVersion, "source_run_id" | "project" | "source_role">, projectId: number): { id: number; href: string | null; label: string } | null {
  const id = version.source_run_id;
  if (id === null || id === undefined) return null;
  const role = version.source_role ? ` (${version.source_role})` : "";
  return { id, href: version.project === projectId ? `/projects/${projectId}/admin/runs/${id}` : null, label: `Run ${id}${role}` };
}

/** The human evaluations published on a version, read defensively (metrics is free-form JSON);
 * newest published first. */
export function humanEvals(metrics: Record<string, unknown> | null | undefined): HumanEval[] {
  const raw = metrics?.human_evals;
  if (!Array.isArray(raw)) return [];
  const evals: HumanEval[] = [];
  for (const item of raw) {
    const entry = record(item);
    const evaluation = finite(entry?.evaluation);
    if (!entry || evaluation === null) continue;
    const criteria = (Array.isArray(entry.criteria) ? entry.criteria : []).flatMap((c): HumanCriterion[] => {
      const criterion = record(c);
      if (!criterion) return [];
      const against = (Array.isArray(criterion.against) ? criterion.against : []).flatMap((a): HumanAgainst[] => {
        const other = record(a);
        const rate = finite(other?.win_rate);
        if (!other || rate === null) return [];
        return [
          {
            version: finite(other.version) ?? 0,
            label: typeof other.label === "string" && other.label ? other.label : `version id ${String(other.version)}`,
            win_rate: rate,
            low: finite(other.low),
            high: finite(other.high),
            n: finite(other.n) ?? 0,
          },
        ];
      });
      return [
        {
          criterion: typeof criterion.criterion === "string" ? criterion.criterion : "overall",
          score: finite(criterion.score),
          low: finite(criterion.low),
          high: finite(criterion.high),
          rank: finite(criterion.rank),
          votes: finite(criterion.votes) ?? 0,
          against,
        },
      ];
    });
    evals.push({
      evaluation,
      name: typeof entry.name === "string" ? entry.name : "",
      project: finite(entry.project),
      published_at: typeof entry.published_at === "string" ? entry.published_at : null,
      criteria,
    });
  }
  return evals.sort((a, b) => (b.published_at ?? "").localeCompare(a.published_at ?? ""));
}

/** "rlhf vs base", or "Evaluation 7" for one without a name. */
export function evalName(evaluation: Pick<HumanEval, "evaluation" | "name">): string {
  return evaluation.name.trim() || `Evaluation ${evaluation.evaluation}`;
}

/** "1012.3 [987.1, 1040.2]": a Bradley-Terry score (Elo scale) with its 95% interval; the score
 * alone when there is no interval; "—" for a version no vote touched. */
export function formatScore(criterion: Pick<HumanCriterion, "score" | "low" | "high">): string {
  if (criterion.score === null) return DASH;
  const score = formatNumber(criterion.score, 1);
  if (criterion.low === null || criterion.high === null) return score;
  return `${score} [${formatNumber(criterion.low, 1)}, ${formatNumber(criterion.high, 1)}]`;
}

/** A rank as "#1"; "—" when unranked. */
export function formatRank(rank: number | null): string {
  return rank === null ? DASH : `#${rank}`;
}

/** "75% (55–88%) vs policy v1, n = 12": the win rate against another version with its interval. */
export function formatAgainst(against: HumanAgainst): string {
  return `${formatShare(against.win_rate, against.low, against.high)} vs ${against.label}, n = ${against.n}`;
}
