import { describe, expect, it } from "vitest";
import { apiUrl } from "./api";

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
