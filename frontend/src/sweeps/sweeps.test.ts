import { describe, expect, it } from "vitest";
import { ApiError, type RunConfigField, type RunKindSpec } from "../api";
import {
  axisTicks,
  baseSpec,
  bestPlot,
  bestSoFar,
  buildSpace,
  buildSweepRequest,
  defaultDirection,
  describeRange,
  errorPlace,
  foldErrors,
  formatDuration,
  formatParam,
  logTicks,
  mapSweepErrors,
  newRow,
  paramPlot,
  paramPlots,
  parseChoiceValues,
  rangeTypes,
  stepLine,
  sweepFieldKeys,
  trialMetric,
  trialsDone,
  type SpaceRow,
  type SweepForm,
} from "./sweeps";
import type { SweepField, SweepKind, SweepTrial } from "./types";

// Shapes as GET /api/sweeps/kinds/ and GET /api/runs/kinds/ report them for sft.
const F = (name: string, type: string, value: unknown): SweepField => ({ name, type, default: value });
const SFT_SWEEP: SweepKind = {
  kind: "sft",
  metrics: ["eval_loss", "train_loss"],
  fields: [
    F("learning_rate", "float | None", null),
    F("num_train_epochs", "float", 1.0),
    F("max_steps", "int", -1),
    F("lora_r", "int", 16),
    F("peft_method", "str", "lora"),
    F("lora_target_modules", "list", ["all-linear"]),
    F("gradient_checkpointing", "bool", false),
    F("top_k", "int | None", 50),
  ],
};
const field = (name: string, type: string, value: unknown, extra: Partial<RunConfigField> = {}): RunConfigField => ({
  name,
  type,
  default: value,
  required: false,
  filled_by_inputs: false,
  worker_path: false,
  ...extra,
});
const SFT_RUN: RunKindSpec = {
  kind: "sft",
  description: "Supervised fine-tuning.",
  inputs: ["base_version", "dataset", "template", "target_field", "cai_run", "limit", "output_model"],
  hints: {},
  inputs_note: "",
  version_tasks: { base_version: ["causal-lm"] },
  adapter_base: false,
  common_config: ["learning_rate", "num_train_epochs", "max_steps", "peft_method", "lora_r"],
  config: [
    field("model_path", "str", null, { filled_by_inputs: true }),
    field("learning_rate", "float | None", null),
    field("max_steps", "int", -1),
    field("eval_steps", "int", 0),
    field("lora_r", "int", 16),
  ],
};

const row = (over: Partial<SpaceRow> & { field: string }): SpaceRow => ({ type: "choice", values: "", low: "", high: "", log: false, step: "", ...over });
const sweepField = (name: string) => SFT_SWEEP.fields.find((f) => f.name === name)!;

function form(over: Partial<SweepForm> = {}): SweepForm {
  return {
    inputs: { base_version: "3", dataset: "5", target_field: "answer" },
    config: { max_steps: "2", eval_steps: "1" },
    rows: [row({ field: "learning_rate", type: "float", low: "1e-4", high: "1e-2", log: true }), row({ field: "lora_r", values: "4, 8" })],
    metric: "eval_loss",
    direction: "minimize",
    budget: "6",
    parallelism: "2",
    sampler: "tpe",
    pruner: "median",
    seed: "",
    alias: "",
    ...over,
  };
}

function trial(number: number, over: Partial<SweepTrial> = {}): SweepTrial {
  return {
    number,
    state: "complete",
    params: {},
    value: null,
    intermediate_values: [],
    run: 100 + number,
    run_state: "succeeded",
    started_at: null,
    finished_at: null,
    duration_s: 12,
    error: "",
    ...over,
  };
}

describe("search-space rows", () => {
  it("offers the ranges a field's type takes", () => {
    expect(rangeTypes(sweepField("lora_r"))).toEqual(["int", "choice"]);
    expect(rangeTypes(sweepField("learning_rate"))).toEqual(["float", "int", "choice"]);
    expect(rangeTypes(sweepField("peft_method"))).toEqual(["choice"]);
    expect(rangeTypes(sweepField("top_k"))).toEqual(["int", "choice"]);
  });

  it("starts a learning rate on a log scale and a bool field with both values", () => {
    expect(newRow(sweepField("learning_rate"))).toMatchObject({ type: "float", log: true });
    expect(newRow(sweepField("num_train_epochs"))).toMatchObject({ type: "float", log: false });
    expect(newRow(sweepField("gradient_checkpointing"))).toMatchObject({ type: "choice", values: "true, false" });
  });

  it("reads a choice's values by the field's type", () => {
    expect(parseChoiceValues(sweepField("lora_r"), "4, 8 ,16,")).toEqual({ value: [4, 8, 16] });
    expect(parseChoiceValues(sweepField("lora_r"), "[4, 8]")).toEqual({ value: [4, 8] });
    expect(parseChoiceValues(sweepField("lora_r"), "4, eight")).toEqual({ error: "“eight” is not a whole number." });
    expect(parseChoiceValues(sweepField("learning_rate"), "1e-4, 3e-4, none")).toEqual({ value: [1e-4, 3e-4, null] });
    expect(parseChoiceValues(sweepField("lora_r"), "none")).toEqual({ error: "lora_r cannot be none." });
    expect(parseChoiceValues(sweepField("peft_method"), 'lora, "full"')).toEqual({ value: ["lora", "full"] });
    expect(parseChoiceValues(sweepField("gradient_checkpointing"), "true, False")).toEqual({ value: [true, false] });
    expect(parseChoiceValues(sweepField("gradient_checkpointing"), "yes")).toEqual({ error: "“yes” is not true or false." });
  });

  it("takes list values only as JSON, and refuses empty, repeated and too many values", () => {
    const modules = sweepField("lora_target_modules");
    expect(parseChoiceValues(modules, '[["q_proj", "v_proj"], ["all-linear"]]')).toEqual({ value: [["q_proj", "v_proj"], ["all-linear"]] });
    expect(parseChoiceValues(modules, "q_proj, v_proj")).toEqual({ error: expect.stringMatching(/^lora_target_modules takes list values: give them as a JSON list/) });
    expect(parseChoiceValues(modules, "[oops")).toEqual({ error: expect.stringMatching(/^Not valid JSON/) });
    expect(parseChoiceValues(sweepField("lora_r"), " ")).toEqual({ error: "List at least one value." });
    expect(parseChoiceValues(sweepField("lora_r"), "[]")).toEqual({ error: "List at least one value." });
    expect(parseChoiceValues(sweepField("lora_r"), "4, 8, 4")).toEqual({ error: "Lists 4 twice." });
    const many = Array.from({ length: 65 }, (_, i) => i).join(",");
    expect(parseChoiceValues(sweepField("lora_r"), many)).toEqual({ error: "At most 64 values." });
  });
});

describe("buildSpace", () => {
  it("turns rows into the search space the server takes", () => {
    const { space, errors } = buildSpace(
      [
        row({ field: "learning_rate", type: "float", low: "1e-4", high: " 0.01 ", log: true }),
        row({ field: "lora_r", values: "4, 8" }),
        row({ field: "max_steps", type: "int", low: "10", high: "50", step: "20" }),
        row({ field: "num_train_epochs", type: "int", low: "1", high: "3" }),
      ],
      SFT_SWEEP.fields,
    );
    expect(errors).toEqual({});
    expect(space).toEqual({
      learning_rate: { type: "float", low: 1e-4, high: 0.01, log: true },
      lora_r: { type: "choice", values: [4, 8] },
      max_steps: { type: "int", low: 10, high: 50, log: false, step: 20 },
      num_train_epochs: { type: "int", low: 1, high: 3, log: false },
    });
  });

  it("keys each mistake as the server would", () => {
    const errorsOf = (r: SpaceRow) => buildSpace([r], SFT_SWEEP.fields).errors;
    expect(buildSpace([], SFT_SWEEP.fields).errors).toEqual({ search_space: "Add at least one field to search." });
    expect(errorsOf(row({ field: "learning_rate", type: "float", low: "1e-3", high: "1e-3" }))).toEqual({
      "search_space.learning_rate": "Empty range: low 0.001 must be below high 0.001.",
    });
    expect(errorsOf(row({ field: "lora_r", type: "int", low: "16", high: "4" }))).toEqual({ "search_space.lora_r": "Empty range: low 16 must be below high 4." });
    expect(errorsOf(row({ field: "lora_r", type: "int", low: "1.5", high: "" }))).toEqual({
      "search_space.lora_r.low": "low must be a whole number, not “1.5”.",
      "search_space.lora_r.high": "Give high.",
    });
    expect(errorsOf(row({ field: "learning_rate", type: "float", low: "0", high: "1", log: true }))).toEqual({ "search_space.learning_rate.low": "A log range starts above 0." });
    expect(errorsOf(row({ field: "learning_rate", type: "float", low: "0.1", high: "1", log: true, step: "0.1" }))).toEqual({
      "search_space.learning_rate.step": "A log range takes no step.",
    });
    expect(errorsOf(row({ field: "lora_r", type: "int", low: "1", high: "8", step: "3" }))).toEqual({
      "search_space.lora_r.step": "high - low (7) is not a multiple of step 3.",
    });
    expect(errorsOf(row({ field: "lora_r", type: "int", low: "1", high: "8", step: "-1" }))).toEqual({ "search_space.lora_r.step": "step must be above 0." });
    expect(errorsOf(row({ field: "lora_r", type: "float", low: "1", high: "8" }))).toEqual({ "search_space.lora_r": "lora_r is a int field: use int or choice." });
    expect(errorsOf(row({ field: "lora_r", values: "4,4" }))).toEqual({ "search_space.lora_r.values": "Lists 4 twice." });
    expect(errorsOf(row({ field: "model_path", values: "/a" }))).toEqual({ "search_space.model_path": "model_path is not a field a sweep of this kind may vary." });
    expect(buildSpace([row({ field: "lora_r", values: "4" }), row({ field: "lora_r", values: "8" })], SFT_SWEEP.fields).errors).toEqual({
      "search_space.lora_r": "lora_r is searched twice.",
    });
  });

  it("allows step 1 on an int log range", () => {
    expect(buildSpace([row({ field: "lora_r", type: "int", low: "2", high: "64", log: true, step: "1" })], SFT_SWEEP.fields)).toEqual({
      space: { lora_r: { type: "int", low: 2, high: 64, log: true, step: 1 } },
      errors: {},
    });
  });
});

describe("buildSweepRequest", () => {
  it("builds the body: inputs and base config as a run takes them, the space, the objective", () => {
    const built = buildSweepRequest(SFT_SWEEP, SFT_RUN, 7, form({ config: { max_steps: "2", eval_steps: "1", lora_r: "32" }, seed: " 7 " }));
    expect(built.errors).toBeNull();
    expect(built.body).toEqual({
      kind: "sft",
      project: 7,
      // lora_r is searched: its base value is not sent (the server refuses a field both fixed and searched).
      config: { max_steps: 2, eval_steps: 1 },
      inputs: { base_version: 3, dataset: 5, target_field: "answer" },
      search_space: { learning_rate: { type: "float", low: 1e-4, high: 1e-2, log: true }, lora_r: { type: "choice", values: [4, 8] } },
      metric: "eval_loss",
      direction: "minimize",
      budget: 6,
      parallelism: 2,
      sampler: "tpe",
      pruner: "median",
      seed: 7,
    });
  });

  it("sends the alias only when given and runs one trial at a time by default", () => {
    const built = buildSweepRequest(SFT_SWEEP, SFT_RUN, 7, form({ parallelism: "", alias: "sweep_best" }));
    expect(built.body).toMatchObject({ parallelism: 1, alias: "sweep_best" });
    expect(built.body).not.toHaveProperty("seed");
  });

  it("checks the objective, the budget and the inputs before sending", () => {
    const built = buildSweepRequest(
      SFT_SWEEP,
      SFT_RUN,
      7,
      form({ metric: "rouge1", direction: "up", budget: "3", parallelism: "4", seed: "-1", alias: "Best!", sampler: "grid", pruner: "hyperband", inputs: { base_version: "v3" }, config: { max_steps: "two" } }),
    );
    expect(built.body).toBeNull();
    expect(built.errors).toEqual({
      metric: "sft runs report eval_loss, train_loss; not “rouge1”.",
      direction: "Choose whether larger or smaller is better.",
      parallelism: "At most the budget (3) at once.",
      seed: "The seed is a whole number in 0..4294967295, not “-1”.",
      alias: "Use 1-64 lowercase letters, digits, '_' or '-', starting with a letter.",
      sampler: "Choose TPE or random sampling.",
      pruner: "Choose median pruning or none.",
      "inputs.base_version": "base_version: “v3” is not an id.",
      "config.max_steps": "max_steps must be a whole number, not “two”.",
    });
    expect(buildSweepRequest(SFT_SWEEP, SFT_RUN, 7, form({ budget: "0", metric: "" })).errors).toEqual({
      budget: "The budget is a whole number of trials, at least 1.",
      metric: "Choose the metric the trials are ranked by.",
    });
    expect(buildSweepRequest(SFT_SWEEP, SFT_RUN, 7, form({ rows: [] })).errors).toEqual({ search_space: "Add at least one field to search." });
  });

  it("takes the searched fields out of the base config", () => {
    expect(baseSpec(SFT_RUN, form().rows).config.map((f) => f.name)).toEqual(["model_path", "max_steps", "eval_steps"]);
  });

  it("guesses the direction from the metric's name", () => {
    expect(defaultDirection("eval_loss")).toBe("minimize");
    expect(defaultDirection("position_bias")).toBe("minimize");
    expect(defaultDirection("kl_final")).toBe("minimize");
    expect(defaultDirection("rouge1")).toBe("maximize");
    expect(defaultDirection("eval_rewards_accuracy")).toBe("maximize");
  });
});

describe("errors at the fields", () => {
  const rows = form().rows;
  const known = sweepFieldKeys(SFT_RUN, rows);

  it("knows the form's fields: its own, each row, each input and base config field", () => {
    expect(known).toContain("search_space.lora_r");
    expect(known).toContain("inputs.dataset");
    expect(known).toContain("config.max_steps");
    expect(known).not.toContain("config.lora_r"); // searched
    expect(known).not.toContain("config.model_path"); // filled by the inputs
  });

  it("puts a server 400 next to the field it names, a finer key at its row", () => {
    const error = new ApiError(400, "search_space.lora_r.values: lists a value twice", {
      "search_space.lora_r.values": ["lists a value twice"],
      "search_space.peft_method": ["'bogus' is refused by sft's config"],
      "inputs.dataset": ["Dataset 9 does not exist in this project."],
      budget: ["Ensure this value is less than or equal to 100."],
      surprise: ["Unknown field."],
    });
    expect(mapSweepErrors(error, known)).toEqual({
      "search_space.lora_r": "values: lists a value twice",
      search_space: "peft_method: 'bogus' is refused by sft's config",
      "inputs.dataset": "Dataset 9 does not exist in this project.",
      budget: "Ensure this value is less than or equal to 100.",
      "": "surprise: Unknown field.",
    });
    expect(mapSweepErrors(new ApiError(403, "Only platform admins name paths.", undefined), known)).toEqual({ "": "Only platform admins name paths." });
  });

  it("folds the form's own errors the same way", () => {
    expect(foldErrors({ "search_space.learning_rate.low": "A log range starts above 0." }, known)).toEqual({ "search_space.learning_rate": "low: A log range starts above 0." });
  });

  it("names the fields in the general line", () => {
    expect(errorPlace("search_space.lora_r")).toBe("lora_r (search space)");
    expect(errorPlace("search_space")).toBe("the search space");
    expect(errorPlace("inputs.dataset")).toBe("dataset");
    expect(errorPlace("budget")).toBe("budget");
  });
});

describe("formats", () => {
  it("shows parameters compactly", () => {
    expect(formatParam(3e-4)).toBe("3e-4");
    expect(formatParam(3.16e-4)).toBe("3.16e-4");
    expect(formatParam(0.0123456)).toBe("0.01235");
    expect(formatParam(16)).toBe("16");
    expect(formatParam(2.5e7)).toBe("2.5e7");
    expect(formatParam(null)).toBe("none");
    expect(formatParam("lora")).toBe("lora");
    expect(formatParam(["q_proj", "v_proj"])).toBe('["q_proj","v_proj"]');
    expect(formatParam(true)).toBe("true");
  });

  it("shows durations and ranges in words", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(4.25)).toBe("4.3 s");
    expect(formatDuration(42.4)).toBe("42 s");
    expect(formatDuration(185)).toBe("3 min 5 s");
    expect(formatDuration(3720)).toBe("1 h 2 min");
    expect(describeRange({ type: "choice", values: [4, 8] })).toBe("4, 8");
    expect(describeRange({ type: "float", low: 1e-4, high: 0.01, log: true, step: null })).toBe("float 1e-4 – 0.01, log");
    expect(describeRange({ type: "int", low: 1, high: 9, log: false, step: 2 })).toBe("int 1 – 9, step 2");
  });

  it("counts the trials done", () => {
    expect(trialsDone({ trials_started: 5, trials_live: 2 })).toBe(3);
    expect(trialsDone({ trials_started: 0, trials_live: 0 })).toBe(0);
  });
});

describe("trials", () => {
  const trials = [
    trial(0, { value: 0.9, params: { learning_rate: 1e-3, lora_r: 8 } }),
    trial(1, { value: 0.4, params: { learning_rate: 3e-4, lora_r: 4 } }),
    trial(2, { state: "pruned", run_state: "cancelled", params: { learning_rate: 5e-3, lora_r: 8 }, intermediate_values: [{ step: 1, value: 1.4 }, { step: 2, value: 1.2 }] }),
    trial(3, { state: "failed", run_state: "failed", params: { learning_rate: 2e-4, lora_r: 4 }, error: "it broke" }),
    trial(4, { state: "running", run_state: "running", params: { learning_rate: 1e-4, lora_r: 16 }, intermediate_values: [{ step: 1, value: 0.5 }] }),
    trial(5, { value: 0.3, params: { learning_rate: 1e-2, lora_r: 4 } }),
  ];
  const space = {
    learning_rate: { type: "float" as const, low: 1e-4, high: 1e-2, log: true, step: null },
    lora_r: { type: "choice" as const, values: [4, 8] },
  };

  it("takes a trial's value, or the last one its run reported", () => {
    expect(trialMetric(trials[1])).toEqual({ value: 0.4, partial: false });
    expect(trialMetric(trials[2])).toEqual({ value: 1.2, partial: true });
    expect(trialMetric(trials[3])).toBeNull();
  });

  it("follows the best completed value so far, by trial number", () => {
    expect(bestSoFar([...trials].reverse(), "minimize").map((p) => p.value)).toEqual([0.9, 0.4, 0.4, 0.4, 0.4, 0.3]);
    expect(bestSoFar(trials, "maximize").map((p) => p.value)).toEqual([0.9, 0.9, 0.9, 0.9, 0.9, 0.9]);
    expect(bestSoFar([trial(0, { state: "failed" }), trial(1, { value: 2 })], "minimize")).toEqual([
      { trial: 0, value: null },
      { trial: 1, value: 2 },
    ]);
  });

  it("draws the best so far as steps", () => {
    expect(stepLine(bestSoFar(trials, "minimize"))).toEqual([
      [0, 0.9],
      [1, 0.9],
      [1, 0.4],
      [2, 0.4],
      [3, 0.4],
      [4, 0.4],
      [5, 0.4],
      [5, 0.3],
    ]);
    expect(stepLine([{ trial: 0, value: null }])).toEqual([]);
  });

  it("plots a log range on log10 x, partial trials hollow, the best marked, trials without a value left out", () => {
    const plot = paramPlot("learning_rate", space.learning_rate, trials, 5);
    expect(plot.axis).toBe("log");
    expect(plot.domain).toEqual([-4, -2]);
    expect(plot.missing).toBe(1);
    expect(plot.points.map((p) => [p.trial, Number(p.x.toFixed(3)), p.y, p.partial, p.best])).toEqual([
      [0, -3, 0.9, false, false],
      [1, -3.523, 0.4, false, false],
      [2, -2.301, 1.2, true, false],
      [4, -4, 0.5, true, false],
      [5, -2, 0.3, false, true],
    ]);
  });

  it("plots a choice as categories in the space's order, values outside it appended", () => {
    const plot = paramPlot("lora_r", space.lora_r, trials, 5);
    expect(plot.axis).toBe("category");
    expect(plot.categories).toEqual(["4", "8", "16"]);
    expect(plot.domain).toEqual([-0.5, 2.5]);
    expect(plot.points.map((p) => [p.trial, p.x])).toEqual([
      [0, 1],
      [1, 0],
      [2, 1],
      [4, 2],
      [5, 0],
    ]);
  });

  it("plots a linear range on its own extent, and a field outside the space by its values", () => {
    const linear = paramPlot("learning_rate", { type: "float", low: 0, high: 0.02 }, trials, null);
    expect(linear.axis).toBe("linear");
    expect(linear.domain).toEqual([0, 0.02]);
    expect(paramPlot("learning_rate", undefined, trials, null)).toMatchObject({ axis: "linear", domain: [1e-4, 1e-2] });
    expect(paramPlot("peft", undefined, [trial(0, { value: 1, params: { peft: "lora" } })], null)).toMatchObject({ axis: "category", categories: ["lora"] });
    expect(paramPlots({ search_space: { lora_r: space.lora_r, learning_rate: space.learning_rate } }, trials, 5).map((p) => p.field)).toEqual(["learning_rate", "lora_r"]);
  });

  it("plots the metric by trial number over the whole budget", () => {
    const { plot, line } = bestPlot(trials, "minimize", 5, 10);
    expect(plot).toMatchObject({ axis: "linear", domain: [0, 9], integers: true, missing: 1 });
    expect(plot.points.map((p) => p.trial)).toEqual([0, 1, 2, 4, 5]);
    expect(line.at(-1)).toEqual([5, 0.3]);
  });
});

describe("axis ticks", () => {
  it("puts a log axis's ticks on powers of ten, or 1-2-5 within a decade", () => {
    expect(logTicks(-4, -2)).toEqual([-4, -3, -2]);
    expect(logTicks(-6, 2, 4)).toEqual([-6, -3, 0]); // thinned to about 4
    expect(logTicks(0, 1).map((t) => Number((10 ** t).toFixed(6)))).toEqual([1, 2, 5, 10]);
    expect(logTicks(Math.log10(3), Math.log10(4))).toEqual([Math.log10(3), Math.log10(4)]);
  });

  it("labels the ticks by the axis", () => {
    expect(axisTicks({ axis: "log", domain: [-4, -2], categories: [] }, 6).map((t) => t.label)).toEqual(["1e-4", "0.001", "0.01"]);
    expect(axisTicks({ axis: "category", domain: [-0.5, 2.5], categories: ["4", "8", "16"] }, 6)).toEqual([
      { at: 0, label: "4" },
      { at: 1, label: "8" },
      { at: 2, label: "16" },
    ]);
    expect(axisTicks({ axis: "category", domain: [-0.5, 3.5], categories: ["a", "b", "c", "d"] }, 2).map((t) => t.label)).toEqual(["a", "c"]);
    expect(axisTicks({ axis: "linear", domain: [0, 3], categories: [], integers: true }, 6).map((t) => t.at)).toEqual([0, 1, 2, 3]);
    expect(axisTicks({ axis: "linear", domain: [0, 0.02], categories: [] }, 2).map((t) => t.label)).toEqual(["0", "0.01", "0.02"]);
  });
});
