import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import { externalImportForm, importSummary, placeImportErrors, type ExternalImportResult } from "./externalImport";

const file = new Blob(['[{"id": 1}]'], { type: "application/json" });

function entries(form: FormData): Record<string, string> {
  const out: Record<string, string> = {};
  form.forEach((value, key) => {
    out[key] = typeof value === "string" ? value : `<file ${(value as File).name}>`;
  });
  return out;
}

describe("externalImportForm", () => {
  it("sends the file, format, on_error and create_members, and no empty optional field", () => {
    const form = externalImportForm(file, "export.json", { format: "label_studio", createMembers: true, skipBadItems: false, advanced: { prompt_field: "  ", question: "" } });
    expect(entries(form)).toEqual({ file: "<file export.json>", format: "label_studio", on_error: "fail", create_members: "true" });
  });

  it("sends each filled optional field, trimmed, under its API name", () => {
    const form = externalImportForm(file, "ds.tar.gz", {
      format: "argilla",
      createMembers: false,
      skipBadItems: true,
      advanced: { annotators: ' {"10": "bob"} ', completion_fields: "left,right", bucket_order: "relevant_results,_", failed_buckets: "biased_results", question: "rank", eval_fraction: "0" },
    });
    expect(entries(form)).toEqual({
      file: "<file ds.tar.gz>",
      format: "argilla",
      on_error: "skip",
      create_members: "false",
      annotators: '{"10": "bob"}',
      completion_fields: "left,right",
      bucket_order: "relevant_results,_",
      failed_buckets: "biased_results",
      question: "rank",
      eval_fraction: "0",
    });
  });
});

const RESULT: ExternalImportResult = {
  format: "label_studio",
  items: 3,
  comparisons_created: 2,
  comparisons_existing: 0,
  rankings_created: 3,
  rankings_existing: 0,
  rankings_existing_differ: 0,
  unlabeled: 1,
  left_out: { cancelled: 1 },
  skipped: 0,
  skipped_items: [],
  members: { matched: [], added: [], created: ["ann@example.org", "bo@example.org"] },
};

describe("importSummary", () => {
  it("says what was created, from how many items, and lists every count", () => {
    const summary = importSummary(RESULT);
    expect(summary.headline).toBe("Imported 2 comparisons and 3 rankings from 3 tasks.");
    expect(Object.fromEntries(summary.rows.map((r) => [r.label, r.value]))).toEqual({
      "Comparisons created": "2",
      "Comparisons imported before": "0",
      "Rankings created": "3",
      "Rankings already here": "0",
      "Unlabeled tasks": "1",
      "Annotations left out": "cancelled: 1",
      "Skipped tasks": "0",
      "Members created (no password yet)": "ann@example.org, bo@example.org",
      "Users made labelers": "none",
      "Members matched": "none",
    });
    expect(summary.problems).toEqual([]);
  });

  it("says when nothing is new, counts rankings ordered otherwise, and lists skipped records", () => {
    const summary = importSummary({
      ...RESULT,
      format: "argilla",
      items: 1,
      comparisons_created: 0,
      comparisons_existing: 1,
      rankings_created: 0,
      rankings_existing: 2,
      rankings_existing_differ: 1,
      left_out: {},
      skipped: 1,
      skipped_items: [{ item: "line 2 (id r2)", index: 1, line: 2, id: "r2", field: "responses.rank", message: "expected a list", value: "x" }],
      members: { matched: ["carol"], added: [], created: [] },
    });
    expect(summary.headline).toBe("Nothing new in 1 record: everything ranked was imported before.");
    const rows = Object.fromEntries(summary.rows.map((r) => [r.label, r.value]));
    expect(rows["Rankings already here"]).toBe("2 (1 ordered otherwise in this file, kept as first imported)");
    expect(rows["Annotations left out"]).toBe("none");
    expect(rows["Skipped records"]).toBe("1");
    expect(rows["Members matched"]).toBe("carol");
    expect(summary.problems).toEqual([{ where: "line 2 (id r2)", field: "responses.rank", value: "x", message: "expected a list" }]);
  });
});

describe("placeImportErrors", () => {
  const shown = ["file", "format", "annotators", "failed_buckets"];

  it("puts a field's message at that field", () => {
    const error = new ApiError(400, "annotators: Expected a JSON object", { annotators: ['Expected a JSON object {"their id or email": "username or email"}.'] });
    expect(placeImportErrors(error, shown)).toEqual({ fields: { annotators: 'Expected a JSON object {"their id or email": "username or email"}.' }, top: null, problems: [] });
  });

  it("puts messages of fields the form does not show, and bare details, at the top", () => {
    expect(placeImportErrors(new ApiError(400, "x", { on_error: ["bad"], format: ["nope"] }), shown)).toEqual({ fields: { format: "nope" }, top: "on_error: bad", problems: [] });
    expect(placeImportErrors(new ApiError(413, "export.json is 9 bytes; the upload limit is 1 bytes."), shown)).toEqual({
      fields: {},
      top: "export.json is 9 bytes; the upload limit is 1 bytes.",
      problems: [],
    });
  });

  it("lists refused items, unmatched annotators and file errors under the detail", () => {
    const detail = "tasks[1] (id 302), field 'annotations[0].result[0].value.selected': expected 'left' or 'right' (got 'both')";
    const item = { item: "tasks[1] (id 302)", index: 1, line: null, id: "302", field: "annotations[0].result[0].value.selected", message: "expected 'left' or 'right'", value: "both" };
    expect(placeImportErrors(new ApiError(400, detail, [item]), shown)).toEqual({
      fields: {},
      top: detail,
      problems: [{ where: "tasks[1] (id 302)", field: "annotations[0].result[0].value.selected", value: "both", message: "expected 'left' or 'right'" }],
    });
    const who = new ApiError(400, "1 annotator(s) cannot be matched", [{ annotator: "label-studio-5", username: "label-studio-5", message: "no such user" }]);
    expect(placeImportErrors(who, shown).problems).toEqual([{ where: "annotator label-studio-5", field: null, value: "label-studio-5", message: "no such user" }]);
    const archive = new ApiError(400, "export.zip: '../x' leaves the folder", [{ item: null, field: null, message: "export.zip: '../x' leaves the folder" }]);
    expect(placeImportErrors(archive, shown).problems).toEqual([{ where: "the file", field: null, value: null, message: "export.zip: '../x' leaves the folder" }]);
  });

  it("shows a value of null as null and other values as JSON", () => {
    const error = new ApiError(400, "d", [
      { item: "tasks[0]", field: "id", message: "missing", value: null },
      { item: "tasks[1]", field: "data.items", message: "expected 3", value: 4 },
    ]);
    expect(placeImportErrors(error, shown).problems.map((p) => p.value)).toEqual(["null", "4"]);
  });
});
