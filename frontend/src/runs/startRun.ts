/**
 * Starting a training run from the console: what each input of POST /api/runs/ is (its picker, label
 * and hint), and the pure steps from form state to the request body and from an API error back to the
 * fields. The form is StartRunForm.tsx (its parts, shared with the sweep form, RunFormParts.tsx); the
 * kinds, their inputs, what each input means for a kind (`hints`), how the inputs combine
 * (`inputs_note`), which versions each version input takes (`version_tasks`, `adapter_base`), which
 * config fields a form shows up front (`common_config`) and their config fields come from
 * GET /api/runs/kinds/ (training/selectors.py run_kinds, declared in training/kinds.py).
 *
 * Form state holds text as typed: a config field left empty (or a checkbox left at its default) is
 * not sent, so the server's default applies; typed values are parsed by the field's type.
 */
import type { ModelVersion, RegisteredModel, RunConfigField, RunKindSpec, RunStartBody } from "../api";
import { parseRound } from "../rounds/join";
import { fieldErrors } from "../ui/format";

/** How an input is picked. */
export type InputControl =
  | "version" // a registered model version (GET /api/models/ and their versions)
  | "snapshot" // a ready preference snapshot of the project
  | "dataset" // a dataset of the project
  | "template" // one prompt template of the project
  | "templates" // several templates (a list of ids)
  | "constitution" // a version number of the project's constitution
  | "cai_run" // a succeeded cai_revise run of the project
  | "split" // train / eval / test
  | "number" // a positive whole number
  | "text"
  | "json"; // a JSON object

export type InputSpec = { label: string; control: InputControl; hint: string };

export const INPUTS: Record<string, InputSpec> = {
  base_version: { label: "Base model version", control: "version", hint: "The registered model version the run starts from." },
  reward_version: { label: "Reward model version", control: "version", hint: "A registered reward model (or classifier) that scores the samples." },
  kl_base_version: {
    label: "KL reference version",
    control: "version",
    hint: "The model the KL divergence is measured against. Empty: the evaluated version's base, if it has one.",
  },
  snapshot: { label: "Preference snapshot", control: "snapshot", hint: "A ready snapshot of this project: its train (and eval) pairs." },
  dataset: { label: "Dataset", control: "dataset", hint: "A dataset of this project." },
  template: { label: "Prompt template", control: "template", hint: "Renders each row into a prompt. Empty: the project's default template." },
  templates: {
    label: "Prompt templates",
    control: "templates",
    hint: "Each checked template is one prompt variant of the sweep. None checked: the project's default template.",
  },
  constitution: { label: "Constitution version", control: "constitution", hint: "The principles the run uses. Default: the newest version." },
  cai_run: { label: "Constitutional-AI run", control: "cai_run", hint: "A succeeded cai_revise run of this project." },
  split: { label: "Split", control: "split", hint: "Optional: only rows of this split." },
  limit: { label: "Limit", control: "number", hint: "At most this many rows or prompts. Empty: all." },
  target_field: { label: "Target field", control: "text", hint: "The dataset column the model learns to write." },
  reference_field: { label: "Reference field", control: "text", hint: "The dataset column that holds the reference answer." },
  output_model: { label: "Output model name", control: "text", hint: "The registry name of the result. Empty: <base model>-<kind>." },
  then_sft: {
    label: "Then SFT",
    control: "json",
    hint: 'Optional: when this run succeeds, LoRA-SFT the base model on its revisions. {"config": {...}, "output_model": "..."}',
  },
};

/** An input's picker, label and hint; the hint is the kind's own (GET /api/runs/kinds/ `hints`) where it has one. */
export function inputSpec(spec: Pick<RunKindSpec, "hints"> | null, name: string): InputSpec {
  const base = INPUTS[name] ?? { label: name, control: "text" as const, hint: "" };
  return { ...base, hint: spec?.hints?.[name] ?? base.hint };
}

export type VersionChoice = { id: number; label: string };

/**
 * What a kind started elsewhere than POST /api/runs/ (generate: a project's generate endpoint, not in
 * GET /api/runs/kinds/) takes as its base_version: a causal LM, no adapter (training/kinds.py's defaults).
 */
export const CAUSAL_LM_BASE: Pick<RunKindSpec, "version_tasks" | "adapter_base"> = { version_tasks: { base_version: ["causal-lm"] }, adapter_base: false };

/**
 * "name vN (task)" for each version an input of a kind accepts: a task its `version_tasks` lists, not
 * GGUF, and adapters only as a base_version of a kind whose `adapter_base` allows them. Generation
 * (no spec in GET /api/runs/kinds/: it starts from a project) takes CAUSAL_LM_BASE.
 */
export function versionChoices(
  registry: { model: RegisteredModel; versions: ModelVersion[] }[],
  spec: Pick<RunKindSpec, "version_tasks" | "adapter_base">,
  input: string,
): VersionChoice[] {
  const tasks = spec.version_tasks[input] ?? [];
  const adapters = spec.adapter_base && input === "base_version";
  return registry
    .filter(({ model }) => tasks.includes(model.task))
    .flatMap(({ model, versions }) =>
      versions
        .filter((v) => v.format !== "gguf" && (adapters || !v.is_adapter))
        .map((v) => ({ id: v.id, label: `${model.name} v${v.version} (${model.task})${v.is_adapter ? " · adapter" : ""}` })),
    )
    .sort((a, b) => a.label.localeCompare(b.label, undefined, { numeric: true }));
}

// --- config fields ---

/** Known values of a few string fields, offered as suggestions (the server checks them). */
export const SUGGESTIONS: Record<string, string[]> = {
  peft_method: ["lora", "prompt_tuning", "full", "none"],
  algorithm: ["ppo", "rloo", "grpo"],
  sampling: ["random", "cycle"],
  dtype: ["auto", "float32", "bfloat16", "float16"],
  device: ["auto", "cpu", "cuda"],
  lr_scheduler_type: ["linear", "cosine", "constant", "constant_with_warmup"],
  kl_controller: ["fixed", "adaptive"],
};

/** The fields a person sets: those the platform does not fill from the inputs. */
export function editableConfig(spec: RunKindSpec): RunConfigField[] {
  return spec.config.filter((f) => !f.filled_by_inputs);
}

/** The editable fields split into the common ones (required ones first, then the kind's `common_config` in order) and the rest. */
export function splitConfig(spec: RunKindSpec): { common: RunConfigField[]; advanced: RunConfigField[] } {
  const fields = editableConfig(spec);
  const names = spec.common_config ?? [];
  const required = fields.filter((f) => f.required);
  const listed = names.map((n) => fields.find((f) => f.name === n)).filter((f): f is RunConfigField => !!f && !f.required);
  const common = [...required, ...listed];
  return { common, advanced: fields.filter((f) => !common.includes(f)) };
}

export type ConfigControl = "checkbox" | "int" | "float" | "text" | "csv" | "json";

export function isOptional(field: RunConfigField): boolean {
  return /\|\s*None$/.test(field.type);
}

function baseType(field: RunConfigField): string {
  return field.type.replace(/\s*\|\s*None$/, "").trim();
}

/** How a field is edited, by its type: a checkbox, a number, text, comma-separated strings or JSON. */
export function configControl(field: RunConfigField): ConfigControl {
  const type = baseType(field);
  if (type === "bool") return "checkbox";
  if (type === "int") return "int";
  if (type === "float") return "float";
  if (type === "str") return "text";
  if (type === "list[str]") return "csv";
  if (type === "list" && Array.isArray(field.default) && field.default.length > 0 && field.default.every((v) => typeof v === "string")) return "csv";
  return "json";
}

/** The default as a placeholder: "none" for null, "a, b" for a list of strings, JSON for the rest. */
export function defaultText(field: RunConfigField): string {
  const value = field.default;
  if (value === null || value === undefined) return field.required ? "required" : "none";
  const control = configControl(field);
  if (control === "csv" && Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export type Parsed = { value: unknown } | { error: string } | null;

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseJson(name: string, text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: `${name}: not valid JSON (${error instanceof Error ? error.message : String(error)}).` };
  }
}

/**
 * A config field's typed value, or an error that names the field, or null when it is left as is (empty
 * text, or a checkbox at its default). "none" or "null" sets an optional (`X | None`) field to null.
 */
export function parseConfigValue(field: RunConfigField, raw: string | boolean | undefined): Parsed {
  const { name } = field;
  const control = configControl(field);
  if (control === "checkbox") {
    if (typeof raw !== "boolean" || raw === field.default) return null;
    return { value: raw };
  }
  if (raw === undefined || typeof raw === "boolean") return null;
  const text = raw.trim();
  if (text === "") return null;
  if (isOptional(field) && (text.toLowerCase() === "none" || text.toLowerCase() === "null")) return { value: null };
  switch (control) {
    case "int":
      return INT_RE.test(text) ? { value: Number.parseInt(text, 10) } : { error: `${name} must be a whole number, not “${text}”.` };
    case "float":
      return FLOAT_RE.test(text) ? { value: Number(text) } : { error: `${name} must be a number, not “${text}”.` };
    case "text":
      return { value: text };
    case "csv": {
      if (text.startsWith("[")) {
        const parsed = parseJson(name, text);
        if ("error" in parsed) return parsed;
        if (!Array.isArray(parsed.value) || !parsed.value.every((v) => typeof v === "string")) {
          return { error: `${name} must be a list of strings.` };
        }
        return parsed;
      }
      return {
        value: text
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      };
    }
    default: {
      const parsed = parseJson(name, text);
      if ("error" in parsed) return parsed;
      const type = baseType(field);
      const value = parsed.value;
      if (type === "dict" && (value === null || typeof value !== "object" || Array.isArray(value))) return { error: `${name} must be a JSON object.` };
      if (type.startsWith("list") && !Array.isArray(value)) return { error: `${name} must be a JSON list.` };
      return parsed;
    }
  }
}

// --- inputs ---

export type InputValue = string | string[];
/** `round`: the id of a round of the project the run joins, "" (or left out) for none. */
export type FormState = { inputs: Record<string, InputValue>; config: Record<string, string | boolean>; round?: string };

const ID_CONTROLS: InputControl[] = ["version", "snapshot", "dataset", "template", "constitution", "cai_run"];

/** An input's value for the request, an error naming it, or null when it is left empty (dropped). */
export function parseInputValue(control: InputControl, name: string, raw: InputValue | undefined): Parsed {
  if (raw === undefined) return null;
  if (control === "templates") {
    const ids = (Array.isArray(raw) ? raw : [raw]).filter((v) => v !== "");
    if (ids.length === 0) return null;
    const bad = ids.find((v) => !/^\d+$/.test(v));
    return bad === undefined ? { value: ids.map(Number) } : { error: `${name}: “${bad}” is not an id.` };
  }
  const text = (Array.isArray(raw) ? raw.join(",") : raw).trim();
  if (text === "") return null;
  if (ID_CONTROLS.includes(control)) {
    return /^\d+$/.test(text) && Number(text) > 0 ? { value: Number(text) } : { error: `${name}: “${text}” is not an id.` };
  }
  if (control === "number") {
    return /^\d+$/.test(text) && Number(text) > 0 ? { value: Number(text) } : { error: `${name} must be a positive whole number, not “${text}”.` };
  }
  if (control === "json") {
    const parsed = parseJson(name, text);
    if ("error" in parsed) return parsed;
    const value = parsed.value;
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { error: `${name} must be a JSON object.` };
    return parsed;
  }
  return { value: text };
}

export type BuildResult = { body: RunStartBody; errors: null } | { body: null; errors: Record<string, string> };

/**
 * The body of POST /api/runs/ from the form: the kind's inputs that are filled in (empty ones dropped),
 * the config fields the user changed (parsed by type; fields the inputs fill are never sent), and the
 * round it joins only when one is chosen. Errors are keyed like the server's (`inputs.limit`,
 * `config.lora_r`, `round`) and their messages name the field.
 */
export function buildRunRequest(spec: RunKindSpec, projectId: number, form: FormState): BuildResult {
  const errors: Record<string, string> = {};
  const inputs: Record<string, unknown> = {};
  for (const name of spec.inputs) {
    const parsed = parseInputValue(inputSpec(spec, name).control, name, form.inputs[name]);
    if (parsed === null) continue;
    if ("error" in parsed) errors[`inputs.${name}`] = parsed.error;
    else inputs[name] = parsed.value;
  }
  const config: Record<string, unknown> = {};
  for (const field of editableConfig(spec)) {
    const parsed = parseConfigValue(field, form.config[field.name]);
    if (parsed === null) continue;
    if ("error" in parsed) errors[`config.${field.name}`] = parsed.error;
    else config[field.name] = parsed.value;
  }
  const round = parseRound(form.round);
  if ("error" in round) errors.round = round.error;
  if (Object.keys(errors).length) return { body: null, errors };
  const body: RunStartBody = { kind: spec.kind, project: projectId, config, inputs };
  if (!("error" in round) && round.value !== null) body.round = round.value;
  return { body, errors: null };
}

/** The keys the form shows an error at: the kind, the round, each input of the kind, each editable config field. */
export function fieldKeys(spec: RunKindSpec | null): string[] {
  if (!spec) return ["kind", "round"];
  return ["kind", "round", ...spec.inputs.map((n) => `inputs.${n}`), ...editableConfig(spec).map((f) => `config.${f.name}`)];
}

/**
 * An API error as messages per form field. The server names fields `inputs.snapshot`,
 * `config.lora_r`, or deeper (`inputs.then_sft.config.lora_r`: shown at then_sft as "config.lora_r:
 * ..."); DRF names body fields (`kind`). Anything the form has no field for lands under "" (the
 * general line), with its key in front.
 */
export function mapRunErrors(error: unknown, spec: RunKindSpec | null): Record<string, string> {
  return foldErrors(fieldErrors(error), fieldKeys(spec));
}

/**
 * Errors keyed finer than a form's fields folded onto the nearest field it has (`inputs.then_sft.config.lora_r`
 * at then_sft as "config.lora_r: ..."); one it has no field for goes to "" (the general line) with its key.
 */
export function foldErrors(errors: Record<string, string>, known: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (key: string, message: string) => {
    out[key] = out[key] ? `${out[key]} ${message}` : message;
  };
  for (const [key, message] of Object.entries(errors)) {
    if (key === "") {
      add("", message);
      continue;
    }
    const at = known.filter((k) => key === k || key.startsWith(`${k}.`)).sort((a, b) => b.length - a.length)[0];
    if (at === undefined) add("", `${key}: ${message}`);
    else add(at, at === key ? message : `${key.slice(at.length + 1)}: ${message}`);
  }
  return out;
}

/** The short field name of an error key: "config.lora_r" -> "lora_r". */
export function fieldName(key: string): string {
  return key.replace(/^(inputs|config)\./, "");
}
