import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import { buildCreateBody, EMPTY_FORM, mapCreateErrors } from "./newEval";

describe("the evaluation's round", () => {
  const form = { ...EMPTY_FORM, project: "7", dataset: "55", versions: ["12", "13"] };

  it("is left out of the body when none is chosen", () => {
    const built = buildCreateBody(form);
    expect(built).toEqual({ project: 7, body: { versions: [12, 13], dataset: 55, split: "test", limit: 100 } });
    expect("round" in (built.errors ? {} : built.body)).toBe(false);
  });

  it("is sent as an id when one is chosen", () => {
    expect(buildCreateBody({ ...form, round: "3" })).toEqual({ project: 7, body: { versions: [12, 13], dataset: 55, split: "test", limit: 100, round: 3 } });
  });

  it("is refused at its field when it is not an id", () => {
    expect(buildCreateBody({ ...form, round: "next" }).errors).toEqual({ round: "Choose a round from the list, not “next”." });
  });

  it("shows the server's refusal of the round at the Round field", () => {
    const error = new ApiError(400, "round: there is no round 9 in project 7", { round: ["there is no round 9 in project 7"] });
    expect(mapCreateErrors(error)).toEqual({ round: "there is no round 9 in project 7" });
  });
});
