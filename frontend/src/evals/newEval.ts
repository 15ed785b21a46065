/**
 * The "New evaluation" form's rules: form state (text as typed) to the POST body of
 * /api/projects/{source}/evaluations/, or the errors to show at the fields; and a 400 answer back to
 * the fields. Limits follow the API contract: 2..8 distinct versions, limit 1..2000 (default 100);
 * `round` (a round of the source project the evaluation joins) is sent only when one is chosen.
 */
import { parseRound } from "../rounds/join";
import { fieldErrors } from "../ui/format";
import type { EvalCreateBody } from "./types";

export const MIN_VERSIONS = 2;
export const MAX_VERSIONS = 8;
export const MAX_LIMIT = 2000;
export const DEFAULT_LIMIT = 100;
export const MAX_SEED = 2 ** 31 - 1;

export type SplitChoice = "test" | "eval" | "train" | "all";

export type EvalForm = {
  project: string;
  name: string;
  dataset: string;
  split: SplitChoice;
  /** A template id, or "" for the project's default template. */
  template: string;
  limit: string;
  versions: string[];
  maxNewTokens: string;
  temperature: string;
  seed: string;
  /** The id of a round of the source project the evaluation joins, or "" for none. */
  round: string;
};

export const EMPTY_FORM: EvalForm = { project: "", name: "", dataset: "", split: "test", template: "", limit: "", versions: [], maxNewTokens: "", temperature: "", seed: "", round: "" };

/** The form fields a server error may name; anything else is shown at the top of the form. */
export const FORM_FIELDS = ["project", "name", "dataset", "split", "template", "limit", "versions", "generation", "seed", "round"] as const;

const WHOLE = /^\d+$/;

function whole(raw: string, label: string, min: number, max?: number): { value?: number; error?: string } {
  const text = raw.trim();
  if (!text) return {};
  if (!WHOLE.test(text)) return { error: `${label} must be a whole number, not “${text}”.` };
  const value = Number(text);
  if (value < min || (max !== undefined && value > max)) return { error: max === undefined ? `${label} must be at least ${min}.` : `${label} must be ${min}..${max}.` };
  return { value };
}

export type Built = { project: number; body: EvalCreateBody; errors?: undefined } | { errors: Record<string, string> };

export function buildCreateBody(form: EvalForm): Built {
  const errors: Record<string, string> = {};
  if (!form.project) errors.project = "Choose the project whose prompts and labelers the evaluation uses.";
  if (!form.dataset) errors.dataset = "Choose the dataset whose prompts the versions answer.";
  const versions = [...new Set(form.versions)].map(Number).filter((id) => Number.isInteger(id) && id > 0);
  if (versions.length < MIN_VERSIONS) errors.versions = `Choose at least ${MIN_VERSIONS} versions to compare.`;
  else if (versions.length > MAX_VERSIONS) errors.versions = `Choose at most ${MAX_VERSIONS} versions (${versions.length} chosen).`;
  const limit = whole(form.limit, "Limit", 1, MAX_LIMIT);
  if (limit.error) errors.limit = limit.error;
  const seed = whole(form.seed, "Seed", 0, MAX_SEED);
  if (seed.error) errors.seed = seed.error;

  const generation: Record<string, number> = {};
  const tokens = whole(form.maxNewTokens, "Max new tokens", 1);
  if (tokens.error) errors.generation = tokens.error;
  else if (tokens.value !== undefined) generation.max_new_tokens = tokens.value;
  const temperature = form.temperature.trim();
  if (temperature) {
    const value = Number(temperature);
    if (!Number.isFinite(value) || value < 0) errors.generation = [errors.generation, `Temperature must be a number ≥ 0, not “${temperature}”.`].filter(Boolean).join(" ");
    else generation.temperature = value;
  }
  const round = parseRound(form.round);
  if ("error" in round) errors.round = round.error;
  if (Object.keys(errors).length) return { errors };

  const body: EvalCreateBody = {
    versions,
    dataset: Number(form.dataset),
    split: form.split === "all" ? null : form.split,
    limit: limit.value ?? DEFAULT_LIMIT,
  };
  if (form.name.trim()) body.name = form.name.trim();
  if (form.template) body.template = Number(form.template);
  if (Object.keys(generation).length) body.generation = generation;
  if (seed.value !== undefined) body.seed = seed.value;
  if (!("error" in round) && round.value !== null) body.round = round.value;
  return { project: Number(form.project), body };
}

/**
 * A refused POST, as messages per form field ("" for the rest: a 403, a detail, an unknown key). The
 * server names nested places as "generation.temperature" or "versions[1]": they go to the field.
 */
export function mapCreateErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, message] of Object.entries(fieldErrors(error))) {
    const field = key.split(/[.[]/)[0];
    const target = (FORM_FIELDS as readonly string[]).includes(field) ? field : "";
    const text = target === "" && key ? `${key}: ${message}` : message;
    out[target] = out[target] ? `${out[target]} ${text}` : text;
  }
  return out;
}
