/**
 * The "Start next round" form's rules: form state (text as typed) to the body of
 * POST /api/projects/{id}/rounds/ (RoundStartInput), or the errors to show at the fields; and a 400
 * answer back to the fields. The version that generates is a registered version, or a model and one
 * of its aliases (e.g. candidate). Limits follow the API: limit 1..100000, guard_samples 0..100
 * (default 10 of each end), a note of at most 500 characters, alias a slug of at most 64.
 */
import { fieldErrors } from "../ui/format";
import type { RoundStartBody } from "./types";

export const MAX_LIMIT = 100_000;
export const MAX_GUARD_SAMPLES = 100;
export const DEFAULT_GUARD_SAMPLES = 10;
export const MAX_NOTE = 500;
export const MAX_ALIAS = 64;

export type SplitChoice = "all" | "train" | "eval" | "test";
export type VersionSource = "version" | "alias";

export type RoundForm = {
  source: VersionSource;
  version: string;
  model: string;
  alias: string;
  dataset: string;
  split: SplitChoice;
  limit: string;
  guardSamples: string;
  note: string;
  maxNewTokens: string;
  temperature: string;
};

export const EMPTY_ROUND_FORM: RoundForm = {
  source: "version",
  version: "",
  model: "",
  alias: "",
  dataset: "",
  split: "all",
  limit: "",
  guardSamples: "",
  note: "",
  maxNewTokens: "",
  temperature: "",
};

/** The form fields a server error may name; anything else is shown at the top of the form. */
export const ROUND_FIELDS = ["version", "model", "alias", "dataset", "split", "limit", "guard_samples", "note", "generation"] as const;
export type RoundField = (typeof ROUND_FIELDS)[number];

const WHOLE = /^\d+$/;
const SLUG = /^[-a-zA-Z0-9_]+$/;

function whole(raw: string, label: string, min: number, max: number): { value?: number; error?: string } {
  const text = raw.trim();
  if (!text) return {};
  if (!WHOLE.test(text)) return { error: `${label} must be a whole number, not “${text}”.` };
  const value = Number(text);
  if (value < min || value > max) return { error: `${label} must be ${min}..${max}.` };
  return { value };
}

export type BuiltRound = { body: RoundStartBody; errors?: undefined } | { body?: undefined; errors: Partial<Record<RoundField, string>> };

export function buildRoundBody(form: RoundForm): BuiltRound {
  const errors: Partial<Record<RoundField, string>> = {};
  const body: Partial<RoundStartBody> = {};
  if (form.source === "version") {
    if (!form.version) errors.version = "Choose the version that generates this round’s answers.";
    else body.version = Number(form.version);
  } else {
    if (!form.model) errors.model = "Choose the model whose alias names the version.";
    else body.model = Number(form.model);
    const alias = form.alias.trim();
    if (!alias) errors.alias = "Name one of the model’s aliases, e.g. candidate.";
    else if (alias.length > MAX_ALIAS || !SLUG.test(alias)) errors.alias = `An alias is letters, digits, - and _ (at most ${MAX_ALIAS}), not “${alias}”.`;
    else body.alias = alias;
  }
  if (!form.dataset) errors.dataset = "Choose the dataset whose rows (those with no comparison yet) are the prompts.";
  else body.dataset = Number(form.dataset);
  const limit = whole(form.limit, "Limit", 1, MAX_LIMIT);
  if (limit.error) errors.limit = limit.error;
  const guard = whole(form.guardSamples, "Guard samples", 0, MAX_GUARD_SAMPLES);
  if (guard.error) errors.guard_samples = guard.error;
  if (form.note.length > MAX_NOTE) errors.note = `At most ${MAX_NOTE} characters (${form.note.length} now).`;

  const generation: Record<string, number> = {};
  const problems: string[] = [];
  const tokens = whole(form.maxNewTokens, "Max new tokens", 1, 1_000_000);
  if (tokens.error) problems.push(tokens.error);
  else if (tokens.value !== undefined) generation.max_new_tokens = tokens.value;
  const temperature = form.temperature.trim();
  if (temperature) {
    const value = Number(temperature);
    if (!Number.isFinite(value) || value < 0) problems.push(`Temperature must be a number ≥ 0, not “${temperature}”.`);
    else generation.temperature = value;
  }
  if (problems.length) errors.generation = problems.join(" ");
  if (Object.keys(errors).length) return { errors };

  const out: RoundStartBody = { ...body, dataset: body.dataset as number, split: form.split === "all" ? null : form.split };
  if (limit.value !== undefined) out.limit = limit.value;
  out.guard_samples = guard.value ?? DEFAULT_GUARD_SAMPLES;
  if (form.note.trim()) out.note = form.note.trim();
  if (Object.keys(generation).length) out.generation = generation;
  return { body: out };
}

/**
 * A refused POST as messages per form field ("" for the rest: a 403, a detail, "project", an unknown
 * key). Nested keys go to their field ("generation.temperature" -> generation). With a model and an
 * alias, the server's "version" complaints (the alias names a version this project may not use)
 * belong at the alias: the version select is not on screen then.
 */
export function mapRoundErrors(error: unknown, source: VersionSource = "version"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, message] of Object.entries(fieldErrors(error))) {
    let field = key.split(/[.[]/)[0];
    if (field === "version" && source === "alias") field = "alias";
    if ((field === "model" || field === "alias") && source === "version") field = "version";
    const target = (ROUND_FIELDS as readonly string[]).includes(field) ? field : "";
    const nested = target !== "" && key !== field && key.startsWith(`${field}.`) ? `${key.slice(field.length + 1)}: ` : "";
    const text = target === "" && key ? `${key}: ${message}` : `${nested}${message}`;
    out[target] = out[target] ? `${out[target]} ${text}` : text;
  }
  return out;
}

/** The general line under a refused form: the general error, else where the field errors are. */
export function generalError(errors: Record<string, string>): string {
  if (errors[""]) return errors[""];
  const keys = Object.keys(errors).filter((k) => k !== "");
  if (!keys.length) return "";
  return `Not started: see ${keys.length === 1 ? "the error at" : "the errors at"} ${keys.join(", ")}.`;
}
