import { describe, expect, it } from "vitest";
import {
  baseLabel,
  evalName,
  formatAgainst,
  formatMetricValue,
  formatMetrics,
  formatModelAliases,
  formatRank,
  formatScore,
  formatVersionCount,
  humanEvals,
  scalarMetrics,
  sourceRun,
  type RegistryVersion,
} from "./registry";

const version = (id: number, model: number, n: number, extra: Partial<RegistryVersion> = {}): RegistryVersion => ({
  id,
  model,
  model_name: model === 1 ? "tiny" : "tiny-lora",
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

/** metrics.human_evals as labeling/services/side_by_side.py evaluation_publish writes it. */
const PUBLISHED = {
  eval_loss: 0.41234,
  human_evals: [
    {
      evaluation: 7,
      name: "rlhf vs base",
      project: 12,
      published_at: "2026-03-02T10:00:00+00:00",
      criteria: [
        {
          criterion: "overall",
          score: 1087.456,
          low: 1012.04,
          high: 1180.5,
          rank: 1,
          votes: 12,
          against: [
            { version: 3, label: "policy v1", win_rate: 0.75, low: 0.4677, high: 0.9111, n: 12 },
            { version: 4, label: "policy v2", win_rate: 0.5, low: null, high: null, n: 0 },
          ],
        },
      ],
    },
    { evaluation: 5, name: "", project: 12, published_at: "2026-02-01T10:00:00+00:00", criteria: [] },
  ],
};

describe("models", () => {
  it("writes aliases by name with the version they point at, and the version count", () => {
    expect(formatModelAliases({ production: 2, candidate: 3 })).toBe("candidate → v3, production → v2");
    expect(formatModelAliases({})).toBe("—");
    expect(formatVersionCount({ version_count: 3, latest_version: 3 })).toBe("3 (latest v3)");
    expect(formatVersionCount({ version_count: 0, latest_version: null })).toBe("0");
  });
});

describe("metrics", () => {
  it("keeps the scalar numbers only, in stored order", () => {
    const metrics = { eval_loss: 0.5, human_evals: [], note: "x", steps: 40, nested: { a: 1 }, bad: Number.NaN, flag: true };
    expect(scalarMetrics(metrics)).toEqual([
      { key: "eval_loss", value: 0.5 },
      { key: "steps", value: 40 },
    ]);
    expect(scalarMetrics(null)).toEqual([]);
  });

  it("writes numbers compactly: integers whole, 3 decimals, 1 from 100 on, tiny ones in exponent form", () => {
    expect(formatMetricValue(40)).toBe("40");
    expect(formatMetricValue(0.41234)).toBe("0.412");
    expect(formatMetricValue(1087.456)).toBe("1087.5");
    expect(formatMetricValue(0.00005)).toBe("5.0e-5");
    expect(formatMetricValue(-0.25)).toBe("-0.25");
  });

  it("puts at most `max` metrics on the line and counts the rest", () => {
    expect(formatMetrics(PUBLISHED)).toEqual({ text: "eval_loss 0.412", more: 0, all: "eval_loss 0.412" });
    const many = { a: 1, b: 2, c: 3, d: 4 };
    expect(formatMetrics(many, 2)).toEqual({ text: "a 1 · b 2", more: 2, all: "a 1 · b 2 · c 3 · d 4" });
    expect(formatMetrics({ human_evals: [] })).toEqual({ text: "—", more: 0, all: "" });
  });
});

describe("lineage and source", () => {
  const known = new Map([version(10, 1, 1), version(11, 1, 2)].map((v) => [v.id, v]));

  it("names the base version within the model, in another model, or by id", () => {
    expect(baseLabel(version(11, 1, 2, { base_version: 10 }), known)).toBe("v1");
    expect(baseLabel(version(30, 2, 1, { base_version: 11 }), known)).toBe("tiny v2");
    expect(baseLabel(version(31, 2, 2, { base_version: 99 }), known)).toBe("version id 99");
    expect(baseLabel(version(10, 1, 1), known)).toBeNull();
  });

  it("links the source run when it is of this project, else gives its id", () => {
    expect(sourceRun(version(11, 1, 2, { source_run_id: 41, project: 4, source_role: "policy" }), 4)).toEqual({
      id: 41,
      href: "/projects/4/admin/runs/41",
      label: "Run 41 (policy)",
    });
    expect(sourceRun(version(11, 1, 2, { source_run_id: 41, project: 9 }), 4)).toEqual({ id: 41, href: null, label: "Run 41" });
    expect(sourceRun(version(11, 1, 2, { source_run_id: 41, project: null }), 4)?.href).toBeNull();
    expect(sourceRun(version(10, 1, 1), 4)).toBeNull();
  });
});

describe("human evaluations", () => {
  it("reads metrics.human_evals, newest published first", () => {
    const evals = humanEvals(PUBLISHED);
    expect(evals.map((e) => e.evaluation)).toEqual([7, 5]);
    expect(evals[0].criteria[0].against).toHaveLength(2);
    expect(evalName(evals[0])).toBe("rlhf vs base");
    expect(evalName(evals[1])).toBe("Evaluation 5");
  });

  it("skips what is not an evaluation and fills what is missing", () => {
    const evals = humanEvals({
      human_evals: [null, "x", { name: "no id" }, { evaluation: 3, criteria: [{ score: null, against: [{ label: "v1" }, { version: 2, win_rate: 1 }] }] }],
    });
    expect(evals).toHaveLength(1);
    const [criterion] = evals[0].criteria;
    expect(criterion).toEqual({
      criterion: "overall",
      score: null,
      low: null,
      high: null,
      rank: null,
      votes: 0,
      against: [{ version: 2, label: "version id 2", win_rate: 1, low: null, high: null, n: 0 }],
    });
    expect(humanEvals({ human_evals: {} })).toEqual([]);
    expect(humanEvals(undefined)).toEqual([]);
  });

  it("writes the score with its interval, the rank and the win rate against each version with its interval", () => {
    const [overall] = humanEvals(PUBLISHED)[0].criteria;
    expect(formatScore(overall)).toBe("1087.5 [1012, 1180.5]");
    expect(formatScore({ score: 1000, low: null, high: null })).toBe("1000");
    expect(formatScore({ score: null, low: null, high: null })).toBe("—");
    expect(formatRank(overall.rank)).toBe("#1");
    expect(formatRank(null)).toBe("—");
    expect(formatAgainst(overall.against[0])).toBe("75% (47–91%) vs policy v1, n = 12");
    expect(formatAgainst(overall.against[1])).toBe("50% vs policy v2, n = 0");
  });
});
