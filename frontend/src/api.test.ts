import { describe, expect, it } from "vitest";
import { apiUrl, clockOffset } from "./api";

describe("apiUrl", () => {
  it("joins a path under /api/", () => {
    expect(apiUrl("docs/")).toBe("/api/docs/");
    expect(apiUrl("/projects/1/")).toBe("/api/projects/1/");
  });

  it("encodes query parameters and drops undefined ones", () => {
    expect(apiUrl("runs/", { state: "running", limit: 10, offset: undefined })).toBe("/api/runs/?state=running&limit=10");
    expect(apiUrl("users/", { search: "a&b c" })).toBe("/api/users/?search=a%26b+c");
  });

  it("refuses to climb out of the API root", () => {
    expect(() => apiUrl("../admin/")).toThrow(/not allowed/);
  });
});

describe("clockOffset", () => {
  const local = Date.parse("2025-03-01T10:00:00.000Z");

  it("reads how far the server's clock is ahead from its Date header", () => {
    expect(clockOffset("Sat, 01 Mar 2025 10:05:00 GMT", local)).toBe(300_500);
    expect(clockOffset("Sat, 01 Mar 2025 09:59:00 GMT", local)).toBe(-59_500);
  });

  it("calls a difference of under two seconds noise, and ignores a missing or bad header", () => {
    expect(clockOffset("Sat, 01 Mar 2025 10:00:01 GMT", local)).toBe(0);
    expect(clockOffset(null, local)).toBeNull();
    expect(clockOffset("yesterday-ish", local)).toBeNull();
  });
});
