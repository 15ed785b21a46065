/**
 * Hyperparameter sweeps, the pure part: from the start form's search-space rows to the body of
 * POST /api/sweeps/ (checked before it is sent, errors keyed as the server keys them:
 * `search_space.lora_r.low`, `budget`, `inputs.dataset`), an API error back onto the form's fields,
 * and from a sweep's trials to what its page shows (the best-so-far series, one plot per searched
 * parameter on a log, linear or category axis, the axis ticks). The screens are SweepsTab.tsx,
 * SweepPage.tsx, StartSweepForm.tsx and SweepCharts.tsx; the rules for a range are the server's
 * (training/services/sweeps.py search_space_check), repeated here so that most mistakes are caught
 * before the request.
 */
import type { RunKindSpec } from "../api";
import { buildRunRequest, editableConfig, fieldName, foldErrors, type InputValue } from "../runs/startRun";
import { fieldErrors } from "../ui/format";
import { niceTicks } from "../ui/scale";
import type { SearchSpace, SpaceEntry, Sweep, SweepDirection, SweepField, SweepKind, SweepPruner, SweepSampler, SweepStartBody, SweepTrial } from "./types";

/** Fields one search space may vary, values one choice may list (training/services/sweeps.py). */
export const MAX_FIELDS = 20;
export const MAX_CHOICES = 64;
const ALIAS_RE = /^[a-z][a-z0-9_-]{0,63}$/;
const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SCALARS = ["int", "float", "bool", "str"];

// --- the search space, as the form edits it ---

export type RangeType = "choice" | "int" | "float";

/** One row of the form's search space: a field and its range, as typed (values: "4, 8, 16"). */
export type SpaceRow = { field: string; type: RangeType; values: string; low: string; high: string; log: boolean; step: string };

function baseType(type: string): string {
  return type.replace(/\s*\|\s*None$/, "").trim();
}

function isOptional(type: string): boolean {
  return /\|\s*None$/.test(type);
}

/** The ranges a field takes: an int field an int range, a float field a float or int range, any field a choice. */
export function rangeTypes(field: SweepField): RangeType[] {
  const type = baseType(field.type);
  if (type === "int") return ["int", "choice"];
  if (type === "float") return ["float", "int", "choice"];
  return ["choice"];
}

/** A fresh row for a field: its first range (a learning rate on a log scale); a bool field offers both values. */
export function newRow(field: SweepField): SpaceRow {
  const type = rangeTypes(field)[0];
  const bool = baseType(field.type) === "bool";
  return { field: field.name, type, values: bool ? "true, false" : "", low: "", high: "", log: type === "float" && /learning_rate|(^|_)lr$/.test(field.name), step: "" };
}

type Parsed<T> = { value: T } | { error: string };

function parseToken(field: SweepField, token: string): Parsed<unknown> {
  const type = baseType(field.type);
  const lower = token.toLowerCase();
  if (lower === "none" || lower === "null") {
    return isOptional(field.type) ? { value: null } : { error: `${field.name} cannot be none.` };
  }
  if (type === "int") return INT_RE.test(token) ? { value: Number.parseInt(token, 10) } : { error: `“${token}” is not a whole number.` };
  if (type === "float") return FLOAT_RE.test(token) ? { value: Number(token) } : { error: `“${token}” is not a number.` };
  if (type === "bool") return lower === "true" || lower === "false" ? { value: lower === "true" } : { error: `“${token}” is not true or false.` };
  return { value: token.replace(/^(["'])(.*)\1$/, "$2") };
}

/**
 * A choice's values from the text typed: comma-separated values of the field's type ("4, 8, 16",
 * "lora, full", "none" for an optional field), or a JSON list (the only way for list or dict fields:
 * `[["q_proj", "v_proj"], ["all-linear"]]`). At least one, at most MAX_CHOICES, none twice.
 */
export function parseChoiceValues(field: SweepField, text: string): Parsed<unknown[]> {
  const trimmed = text.trim();
  if (!trimmed) return { error: "List at least one value." };
  const type = baseType(field.type);
  let values: unknown[];
  if (trimmed.startsWith("[")) {
    let data: unknown;
    try {
      data = JSON.parse(trimmed);
    } catch (error) {
      return { error: `Not valid JSON (${error instanceof Error ? error.message : String(error)}).` };
    }
    values = data as unknown[]; // text that starts with "[" and parses is a list
  } else if (!SCALARS.includes(type)) {
    return { error: `${field.name} takes ${type} values: give them as a JSON list of values, e.g. [["q_proj", "v_proj"], ["all-linear"]].` };
  } else {
    values = [];
    for (const token of trimmed.split(",").map((t) => t.trim()).filter(Boolean)) {
      const parsed = parseToken(field, token);
      if ("error" in parsed) return parsed;
      values.push(parsed.value);
    }
  }
  if (values.length === 0) return { error: "List at least one value." };
  if (values.length > MAX_CHOICES) return { error: `At most ${MAX_CHOICES} values.` };
  const texts = values.map((v) => JSON.stringify(v));
  const twice = texts.findIndex((t, i) => texts.indexOf(t) !== i);
  if (twice >= 0) return { error: `Lists ${formatParam(values[twice])} twice.` };
  return { value: values };
}

function parseBound(text: string, integral: boolean, name: string): Parsed<number> {
  const trimmed = text.trim();
  if (!trimmed) return { error: `Give ${name}.` };
  if (integral) return INT_RE.test(trimmed) ? { value: Number.parseInt(trimmed, 10) } : { error: `${name} must be a whole number, not “${trimmed}”.` };
  return FLOAT_RE.test(trimmed) ? { value: Number(trimmed) } : { error: `${name} must be a number, not “${trimmed}”.` };
}

/** An int or float row's range, or its errors keyed `search_space.<field>[.low|.high|.step]`. */
function parseRange(row: SpaceRow): { entry: SpaceEntry } | { errors: Record<string, string> } {
  const key = `search_space.${row.field}`;
  const integral = row.type === "int";
  const errors: Record<string, string> = {};
  const low = parseBound(row.low, integral, "low");
  const high = parseBound(row.high, integral, "high");
  if ("error" in low) errors[`${key}.low`] = low.error;
  if ("error" in high) errors[`${key}.high`] = high.error;
  let step: number | null = null;
  if (row.step.trim()) {
    const parsed = parseBound(row.step, integral, "step");
    if ("error" in parsed) errors[`${key}.step`] = parsed.error;
    else if (parsed.value <= 0) errors[`${key}.step`] = "step must be above 0.";
    else step = parsed.value;
  }
  if ("value" in low && "value" in high) {
    if (low.value >= high.value) errors[key] = `Empty range: low ${low.value} must be below high ${high.value}.`;
    else if (row.log && low.value <= 0) errors[`${key}.low`] = "A log range starts above 0.";
    else if (row.log && step !== null && !(integral && step === 1)) errors[`${key}.step`] = "A log range takes no step.";
    else if (integral && step !== null && (high.value - low.value) % step !== 0) {
      errors[`${key}.step`] = `high - low (${high.value - low.value}) is not a multiple of step ${step}.`;
    }
  }
  if (Object.keys(errors).length || !("value" in low) || !("value" in high)) return { errors };
  const entry: SpaceEntry = { type: integral ? "int" : "float", low: low.value, high: high.value, log: row.log };
  if (step !== null) entry.step = step;
  return { entry };
}

/** The search space of the rows, or the errors that keep it from being sent (keyed as the server keys them). */
export function buildSpace(rows: SpaceRow[], fields: SweepField[]): { space: SearchSpace; errors: Record<string, string> } {
  const space: SearchSpace = {};
  const errors: Record<string, string> = {};
  if (rows.length === 0) errors.search_space = "Add at least one field to search.";
  if (rows.length > MAX_FIELDS) errors.search_space = `At most ${MAX_FIELDS} fields.`;
  const seen = new Set<string>();
  for (const row of rows) {
    const key = `search_space.${row.field}`;
    const field = fields.find((f) => f.name === row.field);
    if (!field) {
      errors[key] = `${row.field} is not a field a sweep of this kind may vary.`;
      continue;
    }
    if (seen.has(row.field)) {
      errors[key] = `${row.field} is searched twice.`;
      continue;
    }
    seen.add(row.field);
    if (!rangeTypes(field).includes(row.type)) {
      errors[key] = `${row.field} is a ${field.type} field: use ${rangeTypes(field).join(" or ")}.`;
      continue;
    }
    if (row.type === "choice") {
      const parsed = parseChoiceValues(field, row.values);
      if ("error" in parsed) errors[`${key}.values`] = parsed.error;
      else space[row.field] = { type: "choice", values: parsed.value };
      continue;
    }
    const range = parseRange(row);
    if ("errors" in range) Object.assign(errors, range.errors);
    else space[row.field] = range.entry;
  }
  return { space, errors };
}

// --- the whole request ---

/** The start form's state, as typed. */
export type SweepForm = {
  inputs: Record<string, InputValue>;
  /** The base config every trial starts from (the searched fields are not sent). */
  config: Record<string, string | boolean>;
  rows: SpaceRow[];
  metric: string;
  direction: string;
  budget: string;
  parallelism: string;
  sampler: string;
  pruner: string;
  seed: string;
  alias: string;
};

/** The run kind with its searched fields taken out of the config: what the base config shows and sends. */
export function baseSpec(run: RunKindSpec, rows: SpaceRow[]): RunKindSpec {
  const searched = new Set(rows.map((r) => r.field));
  return { ...run, config: run.config.filter((f) => !searched.has(f.name)) };
}

/** Smaller is better for losses, perplexity, errors, biases and KL; larger for the rest (accuracy, ROUGE, rewards). */
export function defaultDirection(metric: string): SweepDirection {
  return /loss|perplexity|error|bias|(^|_)kl(_|$)/.test(metric) ? "minimize" : "maximize";
}

function wholeNumber(text: string): number | null {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : null;
}

export type SweepBuild = { body: SweepStartBody; errors: null } | { body: null; errors: Record<string, string> };

/**
 * The body of POST /api/sweeps/: the inputs and base config as the start-run form builds them
 * (runs/startRun.ts buildRunRequest, the searched fields left out), the search space of the rows,
 * the metric, direction, budget, parallelism (1 when empty, at most the budget), sampler, pruner,
 * and the seed and alias only when given (the server's defaults: random, "best").
 */
export function buildSweepRequest(kind: SweepKind, run: RunKindSpec, projectId: number, form: SweepForm): SweepBuild {
  const base = buildRunRequest(baseSpec(run, form.rows), projectId, { inputs: form.inputs, config: form.config });
  const errors: Record<string, string> = { ...(base.errors ?? {}) };
  const { space, errors: spaceErrors } = buildSpace(form.rows, kind.fields);
  Object.assign(errors, spaceErrors);
  if (!form.metric) errors.metric = "Choose the metric the trials are ranked by.";
  else if (!kind.metrics.includes(form.metric)) errors.metric = `${kind.kind} runs report ${kind.metrics.join(", ")}; not “${form.metric}”.`;
  if (form.direction !== "maximize" && form.direction !== "minimize") errors.direction = "Choose whether larger or smaller is better.";
  const budget = wholeNumber(form.budget);
  if (budget === null || budget < 1) errors.budget = "The budget is a whole number of trials, at least 1.";
  const parallelism = form.parallelism.trim() ? wholeNumber(form.parallelism) : 1;
  if (parallelism === null || parallelism < 1) errors.parallelism = "Parallelism is a whole number of trials at once, at least 1.";
  else if (budget !== null && budget >= 1 && parallelism > budget) errors.parallelism = `At most the budget (${budget}) at once.`;
  if (form.sampler !== "tpe" && form.sampler !== "random") errors.sampler = "Choose TPE or random sampling.";
  if (form.pruner !== "median" && form.pruner !== "none") errors.pruner = "Choose median pruning or none.";
  const seedText = form.seed.trim();
  const seed = seedText ? wholeNumber(seedText) : null;
  if (seedText && (seed === null || seed >= 2 ** 32)) errors.seed = `The seed is a whole number in 0..${2 ** 32 - 1}, not “${seedText}”.`;
  const alias = form.alias.trim();
  if (alias && !ALIAS_RE.test(alias)) errors.alias = "Use 1-64 lowercase letters, digits, '_' or '-', starting with a letter.";
  if (Object.keys(errors).length || !base.body) return { body: null, errors };
  const body: SweepStartBody = {
    kind: kind.kind,
    project: projectId,
    config: base.body.config,
    inputs: base.body.inputs,
    search_space: space,
    metric: form.metric,
    direction: form.direction as SweepDirection,
    budget: budget as number,
    parallelism: parallelism as number,
    sampler: form.sampler as SweepSampler,
    pruner: form.pruner as SweepPruner,
  };
  if (seed !== null) body.seed = seed;
  if (alias) body.alias = alias;
  return { body, errors: null };
}

/** The keys the start form shows an error at: its own fields, each searched row, each input and base config field. */
export function sweepFieldKeys(run: RunKindSpec | null, rows: SpaceRow[]): string[] {
  const keys = ["kind", "metric", "direction", "budget", "parallelism", "sampler", "seed", "pruner", "alias", "search_space"];
  keys.push(...rows.map((r) => `search_space.${r.field}`));
  if (run) {
    keys.push(...run.inputs.map((n) => `inputs.${n}`));
    keys.push(...editableConfig(baseSpec(run, rows)).map((f) => `config.${f.name}`));
  }
  return keys;
}

/** Errors keyed finer than the form's fields (`search_space.lr.low`) folded onto the nearest one (runs/startRun.ts). */
export { foldErrors };

/** A server error (400: `{errors: {"search_space.lora_r.values": [...]}}`) as messages at the form's fields. */
export function mapSweepErrors(error: unknown, known: string[]): Record<string, string> {
  return foldErrors(fieldErrors(error), known);
}

/** What the general line calls a field: "lr (search space)", "dataset", "budget". */
export function errorPlace(key: string): string {
  if (key === "search_space") return "the search space";
  if (key.startsWith("search_space.")) return `${key.slice("search_space.".length)} (search space)`;
  return fieldName(key);
}

// --- reading a sweep ---

/** Trials whose run has ended (the list's trials_started less trials_live). */
export function trialsDone(sweep: Pick<Sweep, "trials_started" | "trials_live">): number {
  return Math.max(0, sweep.trials_started - sweep.trials_live);
}

export function directionText(direction: SweepDirection): string {
  return direction === "minimize" ? "lower is better" : "higher is better";
}

export function directionArrow(direction: SweepDirection): string {
  return direction === "minimize" ? "↓" : "↑";
}

/** A parameter's value as a table shows it: 3e-4, 0.05, 16, lora, none, ["q_proj","v_proj"]. */
export function formatParam(value: unknown): string {
  if (value === null || value === undefined) return "none";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
    return String(Number(value.toPrecision(4)));
  }
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** A metric value: four significant digits; null -> "—". */
export function formatValue(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : formatParam(value);
}

/** 4.2 -> "4.2 s", 185 -> "3 min 5 s", 3720 -> "1 h 2 min"; null -> "—". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 10) return `${Number(seconds.toFixed(1))} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const total = Math.round(seconds);
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

/** A range in words: "4, 8, 16" · "0.0001 – 0.01, log" · "1 – 9, step 2". */
export function describeRange(entry: SpaceEntry): string {
  if (entry.type === "choice") return entry.values.map(formatParam).join(", ");
  const parts = [`${formatParam(entry.low)} – ${formatParam(entry.high)}`];
  if (entry.log) parts.push("log");
  if (entry.step !== null && entry.step !== undefined) parts.push(`step ${formatParam(entry.step)}`);
  return `${entry.type} ${parts.join(", ")}`;
}

/** A trial's metric: its value once complete, else the last value its run reported (partial: pruned or running), else null. */
export function trialMetric(trial: SweepTrial): { value: number; partial: boolean } | null {
  if (trial.value !== null && trial.value !== undefined && Number.isFinite(trial.value)) return { value: trial.value, partial: false };
  const last = trial.intermediate_values.at(-1);
  return last && Number.isFinite(last.value) ? { value: last.value, partial: true } : null;
}

/** Per trial, in number order, the best completed value up to and including it (null before the first). */
export function bestSoFar(trials: SweepTrial[], direction: SweepDirection): { trial: number; value: number | null }[] {
  let best: number | null = null;
  return [...trials]
    .sort((a, b) => a.number - b.number)
    .map((trial) => {
      if (trial.state === "complete" && trial.value !== null && Number.isFinite(trial.value)) {
        if (best === null || (direction === "minimize" ? trial.value < best : trial.value > best)) best = trial.value;
      }
      return { trial: trial.number, value: best };
    });
}

/** The best-so-far series as a step line in data space: flat until a trial improves on it, then up or down. */
export function stepLine(series: { trial: number; value: number | null }[]): [number, number][] {
  const line: [number, number][] = [];
  let previous: number | null = null;
  for (const point of series) {
    if (point.value === null) continue;
    if (previous !== null && point.value !== previous) line.push([point.trial, previous]);
    line.push([point.trial, point.value]);
    previous = point.value;
  }
  return line;
}

// --- plots ---

export type PlotAxis = "linear" | "log" | "category";
/** x is in the axis's own space: the value (linear), its log10 (log) or the category's index. */
export type PlotPoint = { x: number; y: number; trial: number; partial: boolean; best: boolean; text: string };
export type Tick = { at: number; label: string };
export type ParamPlot = {
  field: string;
  axis: PlotAxis;
  /** x extent in the axis's space. */
  domain: [number, number];
  categories: string[];
  points: PlotPoint[];
  /** Trials without a metric yet (or without a usable value of the field): not drawn. */
  missing: number;
  /** Only whole-number ticks (trial numbers). */
  integers?: boolean;
};

function spanOf(values: number[]): [number, number] {
  return values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
}

/**
 * The metric against one searched field: a category per choice value (in the space's order), a log10
 * axis for a log range, a linear one otherwise; each trial with a metric (partial ones too) a point.
 */
export function paramPlot(field: string, entry: SpaceEntry | undefined, trials: SweepTrial[], bestTrial: number | null): ParamPlot {
  const withMetric = trials.map((t) => ({ trial: t, metric: trialMetric(t) })).filter((t) => t.metric !== null && field in t.trial.params);
  const numeric = withMetric.every((t) => typeof t.trial.params[field] === "number");
  const axis: PlotAxis = entry ? (entry.type === "choice" ? "category" : entry.log ? "log" : "linear") : numeric ? "linear" : "category";
  const categories = entry?.type === "choice" ? entry.values.map(formatParam) : [];
  const points: PlotPoint[] = [];
  for (const { trial, metric } of withMetric) {
    const value = trial.params[field];
    const text = formatParam(value);
    let x: number;
    if (axis === "category") {
      if (!categories.includes(text)) categories.push(text);
      x = categories.indexOf(text);
    } else {
      if (typeof value !== "number" || !Number.isFinite(value) || (axis === "log" && value <= 0)) continue;
      x = axis === "log" ? Math.log10(value) : value;
    }
    points.push({ x, y: metric!.value, trial: trial.number, partial: metric!.partial, best: trial.number === bestTrial, text });
  }
  let domain: [number, number];
  if (axis === "category") domain = [-0.5, Math.max(1, categories.length) - 0.5];
  else if (entry && entry.type !== "choice") domain = axis === "log" ? [Math.log10(entry.low), Math.log10(entry.high)] : [entry.low, entry.high];
  else domain = spanOf(points.map((p) => p.x));
  return { field, axis, domain, categories, points, missing: trials.length - points.length };
}

/** The searched fields in name order (the database keeps no order of a JSON object's keys). */
export function searchedFields(sweep: Pick<Sweep, "search_space">): string[] {
  return Object.keys(sweep.search_space).sort();
}

/** One plot per searched field, in name order. */
export function paramPlots(sweep: Pick<Sweep, "search_space">, trials: SweepTrial[], bestTrial: number | null): ParamPlot[] {
  return searchedFields(sweep).map((field) => paramPlot(field, sweep.search_space[field], trials, bestTrial));
}

/** The metric of each trial against its number, with the best so far as a step line. */
export function bestPlot(trials: SweepTrial[], direction: SweepDirection, bestTrial: number | null, budget: number): { plot: ParamPlot; line: [number, number][] } {
  const points: PlotPoint[] = [];
  for (const trial of trials) {
    const metric = trialMetric(trial);
    if (metric) points.push({ x: trial.number, y: metric.value, trial: trial.number, partial: metric.partial, best: trial.number === bestTrial, text: `trial ${trial.number}` });
  }
  const last = Math.max(1, budget - 1, ...trials.map((t) => t.number));
  const plot: ParamPlot = { field: "trial", axis: "linear", domain: [0, last], categories: [], points, missing: trials.length - points.length, integers: true };
  return { plot, line: stepLine(bestSoFar(trials, direction)) };
}

/** Tick positions in log10 space: each power of ten in the range, or 1-2-5 steps within a decade or two. */
export function logTicks(lo: number, hi: number, most = 6): number[] {
  if (lo > hi) [lo, hi] = [hi, lo];
  const decades: number[] = [];
  for (let e = Math.ceil(lo - 1e-9); e <= Math.floor(hi + 1e-9); e++) decades.push(e);
  if (decades.length >= 3 || (decades.length === 2 && hi - lo > 1.5)) {
    const every = Math.max(1, Math.ceil(decades.length / most));
    return decades.filter((_, i) => i % every === 0);
  }
  const ticks: number[] = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of [1, 2, 5]) {
      const t = e + Math.log10(m);
      if (t >= lo - 1e-9 && t <= hi + 1e-9) ticks.push(t);
    }
  }
  return ticks.length >= 2 ? ticks : [lo, hi];
}

/** The x ticks of a plot with room for about `count` labels: values, powers of ten, or categories (thinned, the first always). */
export function axisTicks(plot: Pick<ParamPlot, "axis" | "domain" | "categories" | "integers">, count: number): Tick[] {
  const [lo, hi] = plot.domain;
  if (plot.axis === "category") {
    const every = Math.max(1, Math.ceil(plot.categories.length / Math.max(1, count)));
    return plot.categories.map((label, at) => ({ at, label })).filter((_, i) => i % every === 0);
  }
  if (plot.axis === "log") return logTicks(lo, hi, count).map((at) => ({ at, label: formatParam(Number((10 ** at).toPrecision(6))) }));
  let values = lo === hi ? [lo] : niceTicks(lo, hi, Math.max(2, count));
  if (plot.integers) values = values.filter((v) => Number.isInteger(v));
  return values.map((at) => ({ at, label: formatParam(at) }));
}
