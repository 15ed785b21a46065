import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import { buildRoundBody, EMPTY_ROUND_FORM, generalError, mapRoundErrors, type RoundForm } from "./startRound";

const form = (extra: Partial<RoundForm>): RoundForm => ({ ...EMPTY_ROUND_FORM, version: "4", dataset: "7", ...extra });

describe("the start-round body", () => {
  it("sends a version, the dataset, every split and the default guard samples", () => {
    expect(buildRoundBody(form({}))).toEqual({ body: { version: 4, dataset: 7, split: null, guard_samples: 10 } });
  });

  it("sends a model and its alias instead of a version", () => {
    const built = buildRoundBody(form({ source: "alias", model: "3", alias: " candidate " }));
    expect(built.body).toEqual({ model: 3, alias: "candidate", dataset: 7, split: null, guard_samples: 10 });
  });

  it("sends split, limit, guard samples, note and generation overrides as typed", () => {
    const built = buildRoundBody(form({ split: "test", limit: "50", guardSamples: "0", note: "  try beta 0.2 ", maxNewTokens: "64", temperature: "0.7" }));
    expect(built.body).toEqual({ version: 4, dataset: 7, split: "test", limit: 50, guard_samples: 0, note: "try beta 0.2", generation: { max_new_tokens: 64, temperature: 0.7 } });
  });

  it("names every field it refuses and sends nothing", () => {
    const built = buildRoundBody({ ...EMPTY_ROUND_FORM, limit: "0", guardSamples: "101", note: "x".repeat(501), temperature: "-1", maxNewTokens: "1.5" });
    expect(built.body).toBeUndefined();
    expect(Object.keys(built.errors ?? {}).sort()).toEqual(["dataset", "generation", "guard_samples", "limit", "note", "version"]);
    expect(built.errors?.limit).toBe("Limit must be 1..100000.");
    expect(built.errors?.guard_samples).toBe("Guard samples must be 0..100.");
    expect(built.errors?.generation).toContain("Max new tokens must be a whole number");
    expect(built.errors?.generation).toContain("Temperature must be a number ≥ 0");
    expect(buildRoundBody(form({ limit: "ten" })).errors?.limit).toBe("Limit must be a whole number, not “ten”.");
  });

  it("wants a model and a slug alias in alias mode", () => {
    expect(Object.keys(buildRoundBody(form({ source: "alias" })).errors ?? {}).sort()).toEqual(["alias", "model"]);
    expect(buildRoundBody(form({ source: "alias", model: "3", alias: "my alias" })).errors?.alias).toContain("letters, digits");
    expect(buildRoundBody(form({ source: "alias", model: "3", alias: "a".repeat(65) })).errors?.alias).toContain("at most 64");
  });
});

describe("a refused start", () => {
  const refused = (errors: Record<string, string[]>) => new ApiError(400, "Invalid input.", errors);

  it("puts each server error at its field, nested keys at their field", () => {
    expect(mapRoundErrors(refused({ dataset: ["project 1 has no dataset 9"], "generation.temperature": ["must be ≥ 0"] }))).toEqual({
      dataset: "project 1 has no dataset 9",
      generation: "temperature: must be ≥ 0",
    });
    expect(mapRoundErrors(refused({ guard_samples: ["Ensure this value is less than or equal to 100."] }))).toEqual({ guard_samples: "Ensure this value is less than or equal to 100." });
  });

  it("shows a version error at the alias when the form named a model and alias, and the other way round", () => {
    expect(mapRoundErrors(refused({ alias: ["model 3 has no alias 'nope'"] }), "alias")).toEqual({ alias: "model 3 has no alias 'nope'" });
    expect(mapRoundErrors(refused({ version: ["there is no model version 9 you can use in project 1"] }), "alias")).toEqual({ alias: "there is no model version 9 you can use in project 1" });
    expect(mapRoundErrors(refused({ version: ["there is no model version 9"] }), "version")).toEqual({ version: "there is no model version 9" });
    expect(mapRoundErrors(refused({ model: ["an alias belongs to a model"] }), "version")).toEqual({ version: "an alias belongs to a model" });
  });

  it("keeps what no field shows for the top of the form, with its key", () => {
    expect(mapRoundErrors(refused({ project: ["project 2 is a side-by-side evaluation"] }))).toEqual({ "": "project: project 2 is a side-by-side evaluation" });
    expect(mapRoundErrors(new ApiError(403, "You are a reviewer of this project."))).toEqual({ "": "You are a reviewer of this project." });
  });

  it("sums the errors up in a line", () => {
    expect(generalError({ alias: "no such alias" })).toBe("Not started: see the error at alias.");
    expect(generalError({ dataset: "x", limit: "y" })).toBe("Not started: see the errors at dataset, limit.");
    expect(generalError({ "": "Forbidden.", alias: "x" })).toBe("Forbidden.");
    expect(generalError({})).toBe("");
  });
});
