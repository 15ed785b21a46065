import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, aiAuditApi, apiUrl, clockOffset, constitutionApi, runRevisions } from "./api";

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

describe("constitution, audit and revisions calls", () => {
  const calls: { url: string; method: string; body: unknown }[] = [];
  const answer = (status: number, body: unknown) => {
    vi.stubGlobal("document", { cookie: "csrftoken=tok" });
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit) => {
        calls.push({ url, method: init.method ?? "GET", body: init.body ? JSON.parse(String(init.body)) : undefined });
        return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
      }),
    );
  };
  afterEach(() => {
    calls.length = 0;
    vi.unstubAllGlobals();
  });

  it("lists, creates and reads the default constitution under the project", async () => {
    answer(200, { count: 0, next: null, previous: null, results: [] });
    await constitutionApi.list(7);
    await constitutionApi.default(7);
    await constitutionApi.create(7, { principles: [], note: "first" });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      "GET /api/projects/7/constitutions/?limit=200",
      "GET /api/projects/7/constitutions/default/",
      "POST /api/projects/7/constitutions/",
    ]);
    expect(calls[2].body).toEqual({ principles: [], note: "first" });
  });

  it("passes a refused principle's field errors through to the caller", async () => {
    answer(400, { detail: "principles[2].critique_request: required", errors: { "principles[2].critique_request": ["required"] } });
    const error = await constitutionApi.create(7, { principles: [], note: "" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(400);
    expect((error as ApiError).detail).toBe("principles[2].critique_request: required");
    expect((error as ApiError).errors).toEqual({ "principles[2].critique_request": ["required"] });
  });

  it("pages disagreements and revisions, sending a principle only when one is chosen", async () => {
    answer(200, { count: 0, next: null, previous: null, results: [] });
    await aiAuditApi.get(3);
    await aiAuditApi.disagreements(3, { principle: "harm", offset: 20 });
    await aiAuditApi.disagreements(3, { principle: null });
    await runRevisions(9, { principle: "  ", offset: 40 });
    await runRevisions(9, { principle: "help" });
    expect(calls.map((c) => c.url)).toEqual([
      "/api/projects/3/stats/ai-audit/",
      "/api/projects/3/stats/ai-audit/disagreements/?principle=harm&limit=20&offset=20",
      "/api/projects/3/stats/ai-audit/disagreements/?limit=20&offset=0",
      "/api/runs/9/revisions/?limit=20&offset=40",
      "/api/runs/9/revisions/?principle=help&limit=20&offset=0",
    ]);
  });
});
