import { describe, expect, it } from "vitest";
import { ApiError, type ModelVersion, type RegisteredModel, type RunConfigField, type RunKindSpec } from "../api";
import {
  buildRunRequest,
  CAUSAL_LM_BASE,
  configControl,
  defaultText,
  editableConfig,
  inputSpec,
  mapRunErrors,
  parseConfigValue,
  parseInputValue,
  splitConfig,
  versionChoices,
} from "./startRun";

const field = (name: string, type: string, defaultValue: unknown, extra: Partial<RunConfigField> = {}): RunConfigField => ({
  name,
  type,
  default: defaultValue,
  required: false,
  filled_by_inputs: false,
  worker_path: false,
  ...extra,
});

// Shapes as GET /api/runs/kinds/ reports them (training/selectors.py run_kinds).
const CAI_REVISE: RunKindSpec = {
  kind: "cai_revise",
  description: "The supervised stage of Constitutional AI.",
  inputs: ["base_version", "constitution", "dataset", "template", "split", "limit", "then_sft"],
  hints: { dataset: "Optional: revise answers to this dataset's rows. Empty: the project's comparison prompts." },
  inputs_note: "Prompts: a dataset (with a template), or, with no dataset, the project's comparison prompts.",
  version_tasks: { base_version: ["causal-lm"] },
  adapter_base: false,
  common_config: ["rounds", "principle_keys", "max_new_tokens"],
  config: [
    field("model_path", "str", null, { filled_by_inputs: true }),
    field("prompts_file", "str", null, { filled_by_inputs: true }),
    field("principles", "list", null, { filled_by_inputs: true }),
    field("rounds", "int", 1),
    field("principle_keys", "list[str] | None", null),
    field("sampling", "str", "random"),
    field("max_new_tokens", "int", 128),
    field("temperature", "float", 0.7),
    field("top_k", "int | None", 50),
    field("greedy", "bool", false),
  ],
};

const SFT: RunKindSpec = {
  kind: "sft",
  description: "Supervised fine-tuning.",
  inputs: ["base_version", "dataset", "template", "target_field", "cai_run", "limit", "output_model"],
  hints: { dataset: "With a target field: the rows rendered by the template are the prompts. Leave empty to learn a cai_run instead." },
  inputs_note: "Training data: a dataset and its target field (prompts rendered by the template), or a cai_run (a cai_revise run's revisions) — one or the other.",
  version_tasks: { base_version: ["causal-lm"] },
  adapter_base: false,
  common_config: ["learning_rate", "num_train_epochs", "max_steps", "peft_method", "lora_r"],
  config: [
    field("model_path", "str", null, { filled_by_inputs: true }),
    field("learning_rate", "float | None", null),
    field("num_train_epochs", "float", 1.0),
    field("max_steps", "int", -1),
    field("seed", "int", 0),
    field("peft_method", "str", "lora"),
    field("lora_r", "int", 16),
    field("lora_target_modules", "list", ["all-linear"]),
    field("completion_only_loss", "bool", true),
    field("train_file", "str", null, { filled_by_inputs: true }),
  ],
};

const EVALUATE: RunKindSpec = {
  kind: "evaluate",
  description: "Score a model.",
  inputs: ["base_version", "dataset", "split", "reference_field", "templates", "reward_version", "kl_base_version", "limit"],
  hints: {},
  inputs_note: "",
  version_tasks: { base_version: ["causal-lm"], reward_version: ["reward-model", "classifier"], kl_base_version: ["causal-lm"] },
  adapter_base: true,
  common_config: ["max_new_tokens", "generations", "metrics"],
  config: [field("generations", "list", [{ name: "greedy", greedy: true }]), field("metrics", "list", []), field("extra", "dict", {})],
};

describe("config fields", () => {
  it("leaves out the fields the inputs fill and puts the kind's common ones first", () => {
    expect(editableConfig(CAI_REVISE).map((f) => f.name)).not.toContain("model_path");
    const { common, advanced } = splitConfig(CAI_REVISE);
    expect(common.map((f) => f.name)).toEqual(["rounds", "principle_keys", "max_new_tokens"]);
    expect(advanced.map((f) => f.name)).toEqual(["sampling", "temperature", "top_k", "greedy"]);
    expect(splitConfig(SFT).common.map((f) => f.name)).toEqual(["learning_rate", "num_train_epochs", "max_steps", "peft_method", "lora_r"]);
  });

  it("takes the common fields from the kind's common_config, in its order", () => {
    const spec: RunKindSpec = { ...SFT, common_config: ["lora_r", "seed", "model_path", "not_a_field"] };
    // Fields the inputs fill, and names the kind has no field for, are left out.
    expect(splitConfig(spec).common.map((f) => f.name)).toEqual(["lora_r", "seed"]);
    expect(splitConfig({ ...SFT, common_config: [] }).common).toEqual([]);
  });

  it("shows required fields up front even when they are not in the common list", () => {
    const spec: RunKindSpec = { ...SFT, config: [...SFT.config, field("odd", "str", null, { required: true })] };
    expect(splitConfig(spec).common[0].name).toBe("odd");
    expect(splitConfig(spec).advanced.map((f) => f.name)).not.toContain("odd");
  });

  it("picks a control by type and shows the default as the placeholder", () => {
    const byName = (spec: RunKindSpec, name: string) => spec.config.find((f) => f.name === name)!;
    expect(configControl(byName(CAI_REVISE, "greedy"))).toBe("checkbox");
    expect(configControl(byName(CAI_REVISE, "top_k"))).toBe("int");
    expect(configControl(byName(SFT, "learning_rate"))).toBe("float");
    expect(configControl(byName(CAI_REVISE, "principle_keys"))).toBe("csv");
    expect(configControl(byName(SFT, "lora_target_modules"))).toBe("csv"); // "list" of strings by its default
    expect(configControl(byName(EVALUATE, "generations"))).toBe("json");
    expect(configControl(byName(EVALUATE, "metrics"))).toBe("json");
    expect(configControl(byName(EVALUATE, "extra"))).toBe("json");
    expect(defaultText(byName(SFT, "lora_target_modules"))).toBe("all-linear");
    expect(defaultText(byName(SFT, "learning_rate"))).toBe("none");
    expect(defaultText(byName(EVALUATE, "generations"))).toBe('[{"name":"greedy","greedy":true}]');
    expect(defaultText(byName(CAI_REVISE, "rounds"))).toBe("1");
  });
});

describe("parsing values", () => {
  it("parses numbers by type and names the field when one is bad", () => {
    const lr = field("learning_rate", "float | None", null);
    expect(parseConfigValue(lr, "5e-5")).toEqual({ value: 5e-5 });
    expect(parseConfigValue(lr, " 0.001 ")).toEqual({ value: 0.001 });
    expect(parseConfigValue(lr, "none")).toEqual({ value: null });
    expect(parseConfigValue(lr, "fast")).toEqual({ error: "learning_rate must be a number, not “fast”." });
    const r = field("lora_r", "int", 16);
    expect(parseConfigValue(r, "8")).toEqual({ value: 8 });
    expect(parseConfigValue(r, "8.5")).toEqual({ error: "lora_r must be a whole number, not “8.5”." });
    expect(parseConfigValue(r, "none")).toEqual({ error: "lora_r must be a whole number, not “none”." }); // not optional
    expect(parseConfigValue(r, "")).toBeNull();
    expect(parseConfigValue(r, "   ")).toBeNull();
    expect(parseConfigValue(r, undefined)).toBeNull();
  });

  it("sends a checkbox only when it differs from the default", () => {
    const greedy = field("greedy", "bool", false);
    expect(parseConfigValue(greedy, undefined)).toBeNull();
    expect(parseConfigValue(greedy, false)).toBeNull();
    expect(parseConfigValue(greedy, true)).toEqual({ value: true });
  });

  it("splits string lists on commas and reads JSON fields", () => {
    const keys = field("principle_keys", "list[str] | None", null);
    expect(parseConfigValue(keys, "harm, helpful ,")).toEqual({ value: ["harm", "helpful"] });
    expect(parseConfigValue(keys, '["a,b"]')).toEqual({ value: ["a,b"] });
    expect(parseConfigValue(keys, "[1]")).toEqual({ error: "principle_keys must be a list of strings." });
    const generations = field("generations", "list", [{ name: "greedy" }]);
    expect(parseConfigValue(generations, '[{"name": "t1", "temperature": 1}]')).toEqual({ value: [{ name: "t1", temperature: 1 }] });
    expect(parseConfigValue(generations, '{"name": "t1"}')).toEqual({ error: "generations must be a JSON list." });
    const bad = parseConfigValue(generations, "[{name: 1}]");
    expect(bad && "error" in bad && bad.error).toMatch(/^generations: not valid JSON/);
    expect(parseConfigValue(field("extra", "dict", {}), "[]")).toEqual({ error: "extra must be a JSON object." });
  });

  it("reads inputs: ids, id lists, positive limits, JSON objects; empty means left out", () => {
    expect(parseInputValue("version", "base_version", "7")).toEqual({ value: 7 });
    expect(parseInputValue("version", "base_version", "")).toBeNull();
    expect(parseInputValue("templates", "templates", ["3", "5"])).toEqual({ value: [3, 5] });
    expect(parseInputValue("templates", "templates", [])).toBeNull();
    expect(parseInputValue("number", "limit", "0")).toEqual({ error: "limit must be a positive whole number, not “0”." });
    expect(parseInputValue("number", "limit", "ten")).toEqual({ error: "limit must be a positive whole number, not “ten”." });
    expect(parseInputValue("text", "target_field", "  summary ")).toEqual({ value: "summary" });
    expect(parseInputValue("json", "then_sft", '{"output_model": "m"}')).toEqual({ value: { output_model: "m" } });
    expect(parseInputValue("json", "then_sft", "[1]")).toEqual({ error: "then_sft must be a JSON object." });
  });
});

describe("buildRunRequest", () => {
  it("sends the filled inputs and only the changed config fields, parsed by type", () => {
    const result = buildRunRequest(CAI_REVISE, 4, {
      inputs: { base_version: "12", constitution: "", dataset: "", template: "", split: "eval", limit: "", then_sft: "  " },
      config: { rounds: "2", principle_keys: "harm, helpful", max_new_tokens: "", temperature: "0.5", greedy: false, top_k: "none" },
    });
    expect(result.errors).toBeNull();
    expect(result.body).toEqual({
      kind: "cai_revise",
      project: 4,
      inputs: { base_version: 12, split: "eval" },
      config: { rounds: 2, principle_keys: ["harm", "helpful"], temperature: 0.5, top_k: null },
    });
  });

  it("drops inputs the kind does not take and never sends fields the inputs fill", () => {
    const result = buildRunRequest(SFT, 1, {
      inputs: { base_version: "3", dataset: "9", target_field: "summary", snapshot: "4", then_sft: "{}" },
      config: { model_path: "/somewhere", train_file: "x.jsonl", completion_only_loss: true, lora_target_modules: "q_proj, v_proj" },
    });
    expect(result.body).toEqual({
      kind: "sft",
      project: 1,
      inputs: { base_version: 3, dataset: 9, target_field: "summary" },
      config: { lora_target_modules: ["q_proj", "v_proj"] },
    });
  });

  it("reports every bad value under its field's key, with the field's name", () => {
    const result = buildRunRequest(SFT, 1, {
      inputs: { base_version: "3", limit: "-2" },
      config: { lora_r: "big", num_train_epochs: "1.5" },
    });
    expect(result.body).toBeNull();
    expect(result.errors).toEqual({
      "inputs.limit": "limit must be a positive whole number, not “-2”.",
      "config.lora_r": "lora_r must be a whole number, not “big”.",
    });
    const json = buildRunRequest(CAI_REVISE, 1, { inputs: { then_sft: "{config: 1}" }, config: {} });
    expect(Object.keys(json.errors ?? {})).toEqual(["inputs.then_sft"]);
    expect(json.errors?.["inputs.then_sft"]).toMatch(/^then_sft: not valid JSON/);
  });
});

describe("the run's round", () => {
  const form = { inputs: { base_version: "3" }, config: {} };

  it("is left out of the body when none is chosen", () => {
    const expected = { kind: "sft", project: 1, inputs: { base_version: 3 }, config: {} };
    expect(buildRunRequest(SFT, 1, form).body).toEqual(expected);
    expect(buildRunRequest(SFT, 1, { ...form, round: "" }).body).toEqual(expected);
  });

  it("is sent as an id when one is chosen", () => {
    expect(buildRunRequest(SFT, 1, { ...form, round: "5" }).body).toEqual({ kind: "sft", project: 1, inputs: { base_version: 3 }, config: {}, round: 5 });
  });

  it("is refused at its field when it is not an id, with the other errors", () => {
    const result = buildRunRequest(SFT, 1, { inputs: { limit: "-1" }, config: {}, round: "x" });
    expect(result.body).toBeNull();
    expect(result.errors).toEqual({ "inputs.limit": "limit must be a positive whole number, not “-1”.", round: "Choose a round from the list, not “x”." });
  });

  it("shows the server's refusal of the round at the Round field, with or without a kind", () => {
    const error = new ApiError(400, "round: there is no round 9 in project 1", { round: ["there is no round 9 in project 1"] });
    expect(mapRunErrors(error, SFT)).toEqual({ round: "there is no round 9 in project 1" });
    expect(mapRunErrors(error, null)).toEqual({ round: "there is no round 9 in project 1" });
    // A kind's config field named like it stays its own field.
    const rounds = new ApiError(400, "x", { "config.rounds": ["must be 1..8, got 0"] });
    expect(mapRunErrors(rounds, CAI_REVISE)).toEqual({ "config.rounds": "must be 1..8, got 0" });
  });
});

describe("mapRunErrors", () => {
  it("puts the server's inputs.X and config.X errors at those fields", () => {
    const error = new ApiError(400, "config.rounds: must be 1..8, got 0", {
      "config.rounds": ["must be 1..8, got 0"],
      "inputs.base_version": ["required: the registered model version to start from"],
    });
    expect(mapRunErrors(error, CAI_REVISE)).toEqual({
      "config.rounds": "must be 1..8, got 0",
      "inputs.base_version": "required: the registered model version to start from",
    });
  });

  it("shows a nested key at the field it is under, and unknown keys on the general line", () => {
    const nested = new ApiError(400, "x", { "inputs.then_sft.config.lora_r": ["expected int, got str 'big'"] });
    expect(mapRunErrors(nested, CAI_REVISE)).toEqual({ "inputs.then_sft": "config.lora_r: expected int, got str 'big'" });
    const filled = new ApiError(400, "x", { "config.principles": ["set from the project's constitution (inputs.constitution)"] });
    expect(mapRunErrors(filled, CAI_REVISE)).toEqual({ "": "config.principles: set from the project's constitution (inputs.constitution)" });
    const drf = new ApiError(400, "kind: bad", { kind: ['"nope" is not a valid choice.'], config: ["Must be a JSON object."] });
    expect(mapRunErrors(drf, CAI_REVISE)).toEqual({ kind: '"nope" is not a valid choice.', "": "config: Must be a JSON object." });
  });

  it("keeps an error without fields (403, network) as the general line", () => {
    const denied = new ApiError(403, "config.model_path names a path on the workers; only staff may.");
    expect(mapRunErrors(denied, SFT)).toEqual({ "": "config.model_path names a path on the workers; only staff may." });
    expect(mapRunErrors(new Error("offline"), null)).toEqual({ "": "offline" });
  });
});

describe("pickers", () => {
  const model = (id: number, name: string, task: string): RegisteredModel => ({
    id,
    name,
    task,
    description: "",
    created_by: null,
    created_at: "2026-01-01T00:00:00Z",
    version_count: 1,
    latest_version: 1,
    aliases: {},
  });
  const version = (id: number, modelId: number, n: number, extra: Partial<ModelVersion> = {}): ModelVersion => ({
    id,
    model: modelId,
    model_name: "",
    version: n,
    format: "hf-folder",
    base_version: null,
    is_adapter: false,
    merged: false,
    tags: [],
    aliases: [],
    created_at: "2026-01-01T00:00:00Z",
    ...extra,
  });
  const registry = [
    { model: model(1, "tiny", "causal-lm"), versions: [version(11, 1, 2), version(10, 1, 1), version(12, 1, 3, { format: "gguf" })] },
    { model: model(2, "rm", "reward-model"), versions: [version(20, 2, 1)] },
    { model: model(3, "tiny-lora", "causal-lm"), versions: [version(30, 3, 1, { is_adapter: true })] },
  ];

  it("offers the versions an input takes (the kind's version_tasks), as name vN (task)", () => {
    expect(versionChoices(registry, SFT, "base_version")).toEqual([
      { id: 10, label: "tiny v1 (causal-lm)" },
      { id: 11, label: "tiny v2 (causal-lm)" },
    ]);
    expect(versionChoices(registry, EVALUATE, "reward_version")).toEqual([{ id: 20, label: "rm v1 (reward-model)" }]);
    const rewardModel = { version_tasks: { base_version: ["causal-lm", "classifier", "reward-model"] }, adapter_base: false };
    expect(versionChoices(registry, rewardModel, "base_version").map((c) => c.id)).toEqual([20, 10, 11]);
    // An input the kind lists no tasks for offers nothing.
    expect(versionChoices(registry, SFT, "reward_version")).toEqual([]);
  });

  it("offers adapter versions only as the base of a kind whose adapter_base allows them", () => {
    expect(versionChoices(registry, EVALUATE, "base_version").map((c) => c.label)).toContain("tiny-lora v1 (causal-lm) · adapter");
    expect(versionChoices(registry, EVALUATE, "kl_base_version").map((c) => c.id)).toEqual([10, 11]);
    expect(versionChoices(registry, SFT, "base_version").map((c) => c.id)).not.toContain(30);
  });

  it("offers generation (no kind spec) causal LMs and no adapter", () => {
    expect(versionChoices(registry, CAUSAL_LM_BASE, "base_version").map((c) => c.id)).toEqual([10, 11]);
  });

  it("words an input's hint for the kind from the kind's hints (GET /api/runs/kinds/)", () => {
    expect(inputSpec(CAI_REVISE, "dataset").hint).toMatch(/comparison prompts/);
    expect(inputSpec(SFT, "dataset").hint).toMatch(/cai_run/);
    // No hint of the kind's own: the input's general hint.
    expect(inputSpec(EVALUATE, "dataset").hint).toBe("A dataset of this project.");
    expect(inputSpec(SFT, "output_model")).toMatchObject({ label: "Output model name", control: "text" });
    expect(inputSpec(SFT, "output_model").hint).toMatch(/<base model>-<kind>/);
    expect(inputSpec(null, "dataset").hint).toBe("A dataset of this project.");
    expect(inputSpec(SFT, "mystery")).toEqual({ label: "mystery", control: "text", hint: "" });
  });
});
