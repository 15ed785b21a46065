import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import { errorText, fieldErrors, formatBytes, parseExamples, rowErrorPlace, rowErrors } from "./format";

describe("fieldErrors", () => {
  it("maps DRF field errors to one message per field", () => {
    const error = new ApiError(400, "overlap: Ensure this value is greater than or equal to 1.", {
      overlap: ["Ensure this value is greater than or equal to 1."],
      name: ["This field may not be blank.", "Too short."],
    });
    expect(fieldErrors(error)).toEqual({
      overlap: "Ensure this value is greater than or equal to 1.",
      name: "This field may not be blank. Too short.",
    });
  });

  it("puts non-field errors and bare details under the empty key", () => {
    expect(fieldErrors(new ApiError(400, "Give exactly one of row_id or row.", { non_field_errors: ["Give exactly one."] }))).toEqual({
      "": "Give exactly one.",
    });
    expect(fieldErrors(new ApiError(403, "You need the admin role."))).toEqual({ "": "You need the admin role." });
    expect(fieldErrors(new Error("offline"))).toEqual({ "": "offline" });
    expect(fieldErrors(null)).toEqual({});
  });

  it("flattens one level of nesting with the inner key", () => {
    expect(fieldErrors(new ApiError(400, "x", { generation_config: { temperature: ["Must be positive."] } }))).toEqual({
      generation_config: "temperature: Must be positive.",
    });
  });
});

describe("rowErrors", () => {
  it("reads the line/field/message list of an import error", () => {
    const error = new ApiError(400, "line 7, field 'dialogue': null is not allowed", [
      { line: 7, field: "dialogue", message: "null is not allowed; use an empty string" },
    ]);
    const rows = rowErrors(error);
    expect(rows).toEqual([{ line: 7, field: "dialogue", message: "null is not allowed; use an empty string" }]);
    expect(rowErrorPlace(rows[0])).toBe("line 7, field 'dialogue'");
  });

  it("keeps errors without a line (a file-level problem) and ignores non-list errors", () => {
    const tooBig = new ApiError(413, "too large", [{ line: null, field: null, message: "too large" }]);
    expect(rowErrorPlace(rowErrors(tooBig)[0])).toBe("the file");
    expect(rowErrors(new ApiError(400, "x", { name: ["bad"] }))).toEqual([]);
    expect(rowErrors(new Error("x"))).toEqual([]);
  });
});

describe("errorText", () => {
  it("prefers the API's detail", () => {
    expect(errorText(new ApiError(400, "Unknown user 'bob'."))).toBe("Unknown user 'bob'.");
    expect(errorText(new Error("boom"))).toBe("boom");
    expect(errorText("plain")).toBe("plain");
  });
});

describe("parseExamples", () => {
  it("accepts an empty editor and a list of objects", () => {
    expect(parseExamples("  ")).toEqual({ value: [] });
    expect(parseExamples('[{"dialogue": "hi", "summary": "greeting"}]')).toEqual({ value: [{ dialogue: "hi", summary: "greeting" }] });
  });

  it("says what is wrong otherwise", () => {
    expect(parseExamples("[{")).toHaveProperty("error", expect.stringMatching(/^Not valid JSON/));
    expect(parseExamples('{"a": 1}')).toHaveProperty("error", expect.stringMatching(/JSON list/));
    expect(parseExamples('[{"a": 1}, 3]')).toEqual({ error: "Item 1 is not an object of field values." });
  });
});

describe("formatBytes", () => {
  it("uses binary units", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(50 * 1024 * 1024)).toBe("50 MB");
  });
});
