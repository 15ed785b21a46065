import { describe, expect, it } from "vitest";
import {
  applyAnswer,
  canCancel,
  emptyFeed,
  isFinished,
  isTerminal,
  logLine,
  mergeEvents,
  progressFraction,
  registeredVersions,
  sweepHref,
  thin,
  type RunEvent,
  type RunEventsAnswer,
  type RunState,
} from "./runEvents";

const at = "2025-03-01T10:00:00Z";
const state = (seq: number, from: string | null, to: string, extra: Record<string, unknown> = {}): RunEvent => ({
  seq,
  type: "state",
  payload: { from, to, ...extra },
  created_at: at,
});
const metric = (seq: number, name: string, value: number | null, step?: number): RunEvent => ({
  seq,
  type: "metric",
  payload: { name, value, ...(step === undefined ? {} : { step }), t: 1 },
  created_at: at,
});
const log = (seq: number, message: string, level = "info"): RunEvent => ({ seq, type: "log", payload: { level, message, stream: "event" }, created_at: at });
const answer = (events: RunEvent[], runState: RunState, hasMore = false): RunEventsAnswer => ({
  run: 1,
  state: runState,
  last_seq: events.length ? events[events.length - 1].seq : 0,
  next_after: events.length ? events[events.length - 1].seq : 0,
  has_more: hasMore,
  events,
});

describe("mergeEvents", () => {
  it("folds events in seq order, whatever order they came in", () => {
    const feed = mergeEvents(emptyFeed(), [log(3, "third"), log(1, "first"), log(2, "second")]);
    expect(feed.after).toBe(3);
    expect(feed.logs.map((l) => l.message)).toEqual(["first", "second", "third"]);
  });

  it("drops events it already has: a repeated or overlapping answer adds nothing twice", () => {
    const once = mergeEvents(emptyFeed(), [metric(1, "loss", 0.9, 0), metric(2, "loss", 0.8, 1), log(3, "a")]);
    const again = mergeEvents(once, [metric(2, "loss", 0.8, 1), log(3, "a"), log(4, "b"), log(4, "b")]);
    expect(again.metrics.loss).toEqual([
      { step: 0, value: 0.9 },
      { step: 1, value: 0.8 },
    ]);
    expect(again.logs.map((l) => l.seq)).toEqual([3, 4]);
    expect(again.after).toBe(4);
  });

  it("returns the same feed when nothing is new, and never mutates the old one", () => {
    const feed = mergeEvents(emptyFeed(), [metric(1, "loss", 1, 0)]);
    expect(mergeEvents(feed, [metric(1, "loss", 1, 0)])).toBe(feed);
    expect(mergeEvents(feed, [])).toBe(feed);
    const next = mergeEvents(feed, [metric(2, "loss", 0.5, 1)]);
    expect(feed.metrics.loss).toHaveLength(1);
    expect(next.metrics.loss).toHaveLength(2);
  });

  it("builds one series per metric name, x = step", () => {
    const feed = mergeEvents(emptyFeed(), [
      metric(1, "loss", 0.7, 10),
      metric(2, "reward/mean", 0.1, 10),
      metric(3, "loss", 0.6, 20),
      { seq: 4, type: "progress", payload: { step: 20, total: 100 }, created_at: at },
      metric(5, "reward/mean", 0.3, 20),
    ]);
    expect(Object.keys(feed.metrics).sort()).toEqual(["loss", "reward/mean"]);
    expect(feed.metrics.loss).toEqual([
      { step: 10, value: 0.7 },
      { step: 20, value: 0.6 },
    ]);
    expect(feed.metrics["reward/mean"].map((p) => p.step)).toEqual([10, 20]);
    expect(feed.logs).toEqual([]);
  });

  it("numbers points without a step after the previous one, keeps NaN as a gap, ignores nameless metrics", () => {
    const feed = mergeEvents(emptyFeed(), [
      metric(1, "acc", 0.5),
      metric(2, "acc", null),
      metric(3, "acc", 0.7, 10),
      metric(4, "acc", 0.8),
      { seq: 5, type: "metric", payload: { value: 1 }, created_at: at },
    ]);
    expect(feed.metrics.acc).toEqual([
      { step: 0, value: 0.5 },
      { step: 1, value: null },
      { step: 10, value: 0.7 },
      { step: 11, value: 0.8 },
    ]);
    expect(feed.after).toBe(5);
  });

  it("keeps the log bounded, newest lines last, and counts what it dropped", () => {
    const limits = { logLines: 3, pointsPerMetric: 100 };
    let feed = mergeEvents(emptyFeed(), [log(1, "a"), log(2, "b")], limits);
    feed = mergeEvents(feed, [log(3, "c"), log(4, "d"), log(5, "e")], limits);
    expect(feed.logs.map((l) => l.message)).toEqual(["c", "d", "e"]);
    expect(feed.logsDropped).toBe(2);
  });

  it("thins a long metric series instead of growing without bound, keeping the newest point", () => {
    const limits = { logLines: 10, pointsPerMetric: 10 };
    let feed = emptyFeed();
    for (let seq = 1; seq <= 100; seq++) feed = mergeEvents(feed, [metric(seq, "loss", 1 / seq, seq)], limits);
    const series = feed.metrics.loss;
    expect(series.length).toBeLessThanOrEqual(10);
    expect(series[0].step).toBe(1);
    expect(series[series.length - 1].step).toBe(100);
    expect(series.map((p) => p.step)).toEqual([...series.map((p) => p.step)].sort((a, b) => a - b));
  });
});

describe("thin", () => {
  it("leaves a short series alone and halves a long one, first and last kept", () => {
    const points = Array.from({ length: 7 }, (_, i) => ({ step: i, value: i }));
    expect(thin(points, 7)).toBe(points);
    expect(thin(points, 6).map((p) => p.step)).toEqual([0, 2, 4, 6]);
    expect(thin(points.slice(0, 6), 5).map((p) => p.step)).toEqual([0, 2, 4, 5]);
  });
});

describe("logLine", () => {
  it("shows log, error and state events; not metrics or progress", () => {
    expect(logLine(log(1, "hello", "warning"))).toMatchObject({ level: "warning", stream: "event", message: "hello" });
    expect(logLine({ seq: 2, type: "log", payload: { level: "stderr", stream: "stderr", message: "Traceback" }, created_at: at })).toMatchObject({
      level: "stderr",
      stream: "stderr",
    });
    expect(logLine({ seq: 3, type: "error", payload: { message: "CUDA out of memory" }, created_at: at })).toMatchObject({
      level: "error",
      message: "CUDA out of memory",
    });
    expect(logLine(state(4, "running", "cancelling", { note: "cancelled by alice" }))?.message).toBe("running → cancelling — cancelled by alice");
    expect(logLine(state(1, null, "queued"))?.message).toBe("queued");
    expect(logLine(metric(5, "loss", 1, 1))).toBeNull();
  });
});

describe("applyAnswer and the end of polling", () => {
  it("is finished only once the state is terminal and there is nothing more to fetch", () => {
    let feed = applyAnswer(emptyFeed(), answer([state(1, null, "queued"), state(2, "queued", "running")], "running"));
    expect(feed.state).toBe("running");
    expect(isFinished(feed)).toBe(false);
    // A terminal state with more pages to come: keep fetching.
    feed = applyAnswer(feed, answer([log(3, "x")], "succeeded", true));
    expect(feed.state).toBe("succeeded");
    expect(isFinished(feed)).toBe(false);
    feed = applyAnswer(feed, answer([log(4, "y"), state(5, "running", "succeeded")], "succeeded"));
    expect(isFinished(feed)).toBe(true);
    expect(feed.after).toBe(5);
  });

  it("trusts the newest state event over the answer's state, which the server read before the events", () => {
    const feed = applyAnswer(emptyFeed(), answer([state(1, null, "queued"), state(2, "queued", "cancelled", { note: "cancelled by alice" })], "queued"));
    expect(feed.state).toBe("cancelled");
    expect(isFinished(feed)).toBe(true);
  });

  it("returns the same feed for an answer with nothing new", () => {
    const feed = applyAnswer(emptyFeed(), answer([state(1, null, "queued")], "queued"));
    expect(applyAnswer(feed, answer([], "queued"))).toBe(feed);
  });
});

describe("run states", () => {
  it("knows the terminal and cancellable states", () => {
    expect(["succeeded", "failed", "cancelled"].every(isTerminal)).toBe(true);
    expect(["queued", "running", "cancelling", null, undefined].some(isTerminal)).toBe(false);
    expect(canCancel("queued") && canCancel("running")).toBe(true);
    expect(canCancel("cancelling") || canCancel("failed") || canCancel("succeeded")).toBe(false);
  });

  it("computes progress only when there is a total", () => {
    expect(progressFraction(3, 12)).toBe(0.25);
    expect(progressFraction(5, null)).toBeNull();
    expect(progressFraction(null, 10)).toBeNull();
    expect(progressFraction(3, 0)).toBeNull();
  });
});

describe("registeredVersions", () => {
  it("reads outputs.registered and ignores anything malformed", () => {
    expect(registeredVersions({})).toEqual([]);
    expect(registeredVersions({ registered: "no" })).toEqual([]);
    expect(
      registeredVersions({
        registered: [{ id: 7, model: "sft-dialogsum", version: 2, role: "adapter" }, { id: 8, model: "sft-dialogsum", version: 3 }, null, { model: "x" }],
      }),
    ).toEqual([
      { id: 7, model: "sft-dialogsum", version: 2, role: "adapter" },
      { id: 8, model: "sft-dialogsum", version: 3, role: null },
    ]);
  });
});

describe("sweepHref", () => {
  it("links a trial's sweep in its project's console, or on its own outside a project", () => {
    expect(sweepHref(7, 3)).toBe("/projects/3/admin/sweeps/7");
    expect(sweepHref(7, null)).toBe("/sweeps/7");
  });
});
