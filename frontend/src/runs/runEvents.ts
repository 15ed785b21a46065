/**
 * A training run's event stream, folded into what the run page shows: metric series, a bounded log
 * tail and the state. Pure functions, so the merging rules are unit-tested (runEvents.test.ts).
 *
 * The server numbers each run's events 1, 2, 3, ... with no gaps and answers `?after=SEQ` with the
 * events after SEQ (training/apis.py, RunEventsApi). The page polls with the newest seq it holds, so
 * an event arrives once; a repeated or stale answer is harmless because seqs at or below it are dropped.
 */

export type RunState = "queued" | "running" | "cancelling" | "succeeded" | "failed" | "cancelled";

/** GET /api/runs/{id}/ */
export type Run = {
  id: number;
  kind: string;
  state: RunState;
  project: number | null;
  config: Record<string, unknown>;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  progress_step: number | null;
  progress_total: number | null;
  error: string;
  worker_host: string;
  pid: number | null;
  heartbeat_at: string | null;
  last_seq: number;
  round?: number | null;
  /** The sweep the run is a trial of, and its trial number; null when it is none's. */
  sweep?: number | null;
  sweep_trial?: number | null;
  created_by: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
};

export type RunEvent = { seq: number; type: string; payload: Record<string, unknown>; created_at: string };

/** GET /api/runs/{id}/events/?after=SEQ */
export type RunEventsAnswer = {
  run: number;
  state: RunState;
  last_seq: number;
  next_after: number;
  has_more: boolean;
  events: RunEvent[];
};

export const TERMINAL_STATES: readonly RunState[] = ["succeeded", "failed", "cancelled"];

export function isTerminal(state: string | null | undefined): boolean {
  return TERMINAL_STATES.includes(state as RunState);
}

/** Queued and running runs can be cancelled; a cancelling one is on its way already. */
export function canCancel(state: string | null | undefined): boolean {
  return state === "queued" || state === "running";
}

/** A sweep's page: in its project's console, or on its own (/sweeps/:id) for a sweep outside a project. */
export function sweepHref(sweep: number, project: number | null): string {
  return project != null ? `/projects/${project}/admin/sweeps/${sweep}` : `/sweeps/${sweep}`;
}

export function stateTone(state: string): "good" | "bad" | "busy" | "plain" {
  if (state === "succeeded") return "good";
  if (state === "failed") return "bad";
  if (state === "cancelled") return "plain";
  return "busy";
}

/** x is the metric's step (or the next one after the previous point when the run gave none). */
export type MetricPoint = { step: number; value: number | null };

export type LogLine = { seq: number; at: string; level: string; stream: string; message: string };

export type RunFeed = {
  /** The newest seq folded in: poll with ?after=this. */
  after: number;
  metrics: Record<string, MetricPoint[]>;
  /** The newest log lines, oldest first, at most `limits.logLines`. */
  logs: LogLine[];
  /** Log lines dropped from the front to keep `logs` bounded. */
  logsDropped: number;
  /** The `to` of the newest state event. */
  lastState: RunState | null;
  /** The run's state as of the last answer (see `applyAnswer`). */
  state: RunState | null;
  /** The last answer had nothing more to fetch. */
  caughtUp: boolean;
};

export type FeedLimits = { logLines: number; pointsPerMetric: number };

export const LIMITS: FeedLimits = { logLines: 1000, pointsPerMetric: 2000 };

export function emptyFeed(): RunFeed {
  return { after: 0, metrics: {}, logs: [], logsDropped: 0, lastState: null, state: null, caughtUp: false };
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * Halve a series that has grown past `max`: every other point, and always the newest. Long curves
 * keep their shape at a bounded cost; recent points are thinned as they age, not dropped.
 */
export function thin(points: MetricPoint[], max: number): MetricPoint[] {
  if (points.length <= max) return points;
  const kept = points.filter((_, i) => i % 2 === 0 && i < points.length - 1);
  kept.push(points[points.length - 1]);
  return kept;
}

/** The log line an event shows as, or null for events that are not part of the log. */
export function logLine(event: RunEvent): LogLine | null {
  const p = event.payload ?? {};
  const base = { seq: event.seq, at: event.created_at };
  switch (event.type) {
    case "log":
      return { ...base, level: String(p.level ?? "info"), stream: String(p.stream ?? "event"), message: String(p.message ?? "") };
    case "error":
      return { ...base, level: "error", stream: "event", message: String(p.message ?? p.error ?? "error") };
    case "state": {
      const parts = [`${p.from ? `${String(p.from)} → ` : ""}${String(p.to)}`];
      if (p.note) parts.push(String(p.note));
      if (p.error) parts.push(String(p.error));
      return { ...base, level: "state", stream: "state", message: parts.join(" — ") };
    }
    default:
      return null;
  }
}

/**
 * Fold new events into the feed, in seq order, skipping any seq already folded in. Returns the same
 * feed object when nothing was new (so React state does not change).
 */
export function mergeEvents(feed: RunFeed, events: RunEvent[], limits: FeedLimits = LIMITS): RunFeed {
  const fresh = events.filter((e) => e.seq > feed.after).sort((a, b) => a.seq - b.seq);
  if (fresh.length === 0) return feed;
  const metrics = { ...feed.metrics };
  const touched = new Set<string>();
  let logs = feed.logs;
  const added: LogLine[] = [];
  let after = feed.after;
  let lastState = feed.lastState;
  for (const event of fresh) {
    if (event.seq === after) continue; // the same seq twice in one answer
    after = event.seq;
    if (event.type === "metric") {
      const name = event.payload?.name;
      if (typeof name !== "string" || !name) continue;
      if (!touched.has(name)) {
        metrics[name] = [...(metrics[name] ?? [])];
        touched.add(name);
      }
      const series = metrics[name];
      const previous = series.length ? series[series.length - 1].step : -1;
      series.push({ step: finite(event.payload.step) ?? previous + 1, value: finite(event.payload.value) });
      if (series.length > limits.pointsPerMetric) metrics[name] = thin(series, limits.pointsPerMetric);
      continue;
    }
    if (event.type === "state" && typeof event.payload?.to === "string") lastState = event.payload.to as RunState;
    const line = logLine(event);
    if (line) added.push(line);
  }
  let logsDropped = feed.logsDropped;
  if (added.length) {
    logs = [...logs, ...added];
    if (logs.length > limits.logLines) {
      logsDropped += logs.length - limits.logLines;
      logs = logs.slice(logs.length - limits.logLines);
    }
  }
  return { ...feed, after, metrics, logs, logsDropped, lastState };
}

/**
 * Fold one answer of the events endpoint into the feed. The server reads the run's state before
 * its events, so once an answer has no more to fetch, the newest state event is at least as new as
 * the answer's `state`; before that, the answer's `state` is the newest we know.
 */
export function applyAnswer(feed: RunFeed, answer: RunEventsAnswer, limits: FeedLimits = LIMITS): RunFeed {
  const merged = mergeEvents(feed, answer.events, limits);
  const caughtUp = !answer.has_more;
  const state = caughtUp && merged.lastState ? merged.lastState : answer.state;
  if (merged === feed && feed.state === state && feed.caughtUp === caughtUp) return feed;
  return { ...merged, state, caughtUp };
}

/** Nothing more will happen: the run has finished and every event is folded in. */
export function isFinished(feed: RunFeed): boolean {
  return feed.caughtUp && isTerminal(feed.state);
}

/** The model versions a run registered (`outputs.registered`, written when it succeeded). */
export type RegisteredVersion = { id: number; model: string; version: number; role: string | null };

export function registeredVersions(outputs: Record<string, unknown> | null | undefined): RegisteredVersion[] {
  const list = outputs?.registered;
  if (!Array.isArray(list)) return [];
  return list
    .filter((item): item is Record<string, unknown> => !!item && typeof item === "object")
    .filter((item) => typeof item.id === "number" && typeof item.model === "string")
    .map((item) => ({
      id: item.id as number,
      model: item.model as string,
      version: typeof item.version === "number" ? item.version : Number(item.version),
      role: typeof item.role === "string" ? item.role : null,
    }));
}

/** The run's progress as 0..1, or null when it has not reported a total. */
export function progressFraction(step: number | null, total: number | null): number | null {
  if (step === null || total === null || total <= 0) return null;
  return Math.max(0, Math.min(1, step / total));
}
