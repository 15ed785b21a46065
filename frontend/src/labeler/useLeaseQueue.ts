/**
 * The labeler's lease queue: the project, the live lease (GET next), its ranking and comment, and
 * submit / skip / leave-expired with retries, then straight on to the next lease. The decisions are
 * the pure functions of queue.ts; this hook wires them to React state and to the requests.
 *
 * The ranking is kept in a ref as well as in state (so are the lease, busy and the skip arming) so
 * that fast key presses and the async flows never read a stale value.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { api, withRetry, type Criterion, type Page, type Project } from "../api";
import {
  RETRY_DELAYS,
  SKIP_CONFIRM_MS,
  STATS_EVERY_MS,
  criterionNames,
  editStep,
  errorMessage,
  openLease,
  progressOf,
  readyStatus,
  sendingStatus,
  skipFailure,
  sortCriteria,
  startOfToday,
  submitFailure,
  type Busy,
  type Meta,
  type Phase,
  type Progress,
} from "./queue";
import { buildPayload, initRanking, isComplete, missingSummary, rankingReducer, toSaved, type Command, type RankingAction, type RankingState } from "./ranking";
import { forgetTask, loadTask, saveTask } from "./storage";
import type { LabelerStats, Lease } from "./types";

export function useLeaseQueue(projectId: number) {
  const [project, setProject] = useState<Project | null>(null);
  const [criteria, setCriteria] = useState<Criterion[]>([]);
  const [lease, setLease] = useState<Lease | null>(null);
  const [phase, setPhase] = useState<Phase>("loading");
  const [fatal, setFatal] = useState("");
  const [ranking, setRanking] = useState<RankingState>(() => initRanking(2));
  const [comment, setComment] = useState("");
  const [startedAt, setStartedAt] = useState(() => Date.now());
  const [busy, setBusyState] = useState<Busy>(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [skipArmed, setSkipArmedState] = useState(false);
  const [today, setToday] = useState<number | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);

  const rankingRef = useRef(ranking);
  const leaseRef = useRef(lease);
  const busyRef = useRef<Busy>(null);
  const skipArmedRef = useRef(false);
  const skipTimer = useRef<number | undefined>(undefined);
  const commentRef = useRef(comment);
  const startedAtRef = useRef(startedAt);
  const metaRef = useRef<Meta | null>(null);
  const submitted = useRef(new Set<number>());
  const statsAt = useRef(0);
  commentRef.current = comment;
  startedAtRef.current = startedAt;
  leaseRef.current = lease;

  const setBusy = (value: Busy) => {
    busyRef.current = value;
    setBusyState(value);
  };
  const setSkipArmed = (value: boolean) => {
    skipArmedRef.current = value;
    setSkipArmedState(value);
    window.clearTimeout(skipTimer.current);
    if (value) {
      skipTimer.current = window.setTimeout(() => {
        skipArmedRef.current = false;
        setSkipArmedState(false);
      }, SKIP_CONFIRM_MS);
    }
  };

  const commit = (next: RankingState) => {
    rankingRef.current = next;
    setRanking(next);
  };
  const apply = useCallback((action: RankingAction): RankingState => {
    const next = rankingReducer(rankingRef.current, action);
    rankingRef.current = next;
    setRanking(next);
    return next;
  }, []);

  const namesOf = useCallback((state: RankingState) => criterionNames(state, metaRef.current?.criteria ?? []), []);

  // ---- loading ----

  const refreshProgress = useCallback(
    async (force = false) => {
      if (!force && Date.now() - statsAt.current < STATS_EVERY_MS) return;
      statsAt.current = Date.now();
      try {
        setProgress(progressOf(await api.get<LabelerStats>(`projects/${projectId}/stats/`)));
      } catch {
        /* progress is a nicety: the workspace works without it */
      }
    },
    [projectId],
  );

  const show = useCallback((next: Lease | undefined, meta: Meta) => {
    if (!next) {
      leaseRef.current = null;
      setLease(null);
      setPhase("done");
      setStatus("Nothing left to label in this project.");
      return;
    }
    const opened = openLease(next, meta, loadTask(next.assignment.id), Date.now());
    rankingRef.current = opened.ranking;
    leaseRef.current = opened.lease;
    setRanking(opened.ranking);
    setComment(opened.comment);
    setStartedAt(opened.startedAt);
    setLease(opened.lease);
    setPhase("ready");
    setSkipArmed(false);
    if (window.scrollY > 0) window.scrollTo({ top: 0 });
  }, []);

  const nextComparison = useCallback(
    async (before: string) => {
      const meta = metaRef.current;
      if (!meta) return;
      setBusy("next");
      try {
        const next = await withRetry(() => api.get<Lease | undefined>(`projects/${projectId}/next/`), RETRY_DELAYS);
        show(next, meta);
        if (next) setStatus(readyStatus(before, next.comparison.id));
      } catch (err) {
        setFatal(errorMessage(err));
        setPhase("failed");
      } finally {
        setBusy(null);
      }
    },
    [projectId, show],
  );

  useEffect(() => {
    let cancelled = false;
    setPhase("loading");
    setFatal("");
    (async () => {
      try {
        const [p, cs, next] = await Promise.all([
          withRetry(() => api.get<Project>(`projects/${projectId}/`)),
          withRetry(() => api.get<Criterion[]>(`projects/${projectId}/criteria/`)),
          withRetry(() => api.get<Lease | undefined>(`projects/${projectId}/next/`)),
        ]);
        if (cancelled) return;
        const meta = { project: p, criteria: sortCriteria(cs) };
        metaRef.current = meta;
        setProject(meta.project);
        setCriteria(meta.criteria);
        show(next, meta);
      } catch (err) {
        if (cancelled) return;
        setFatal(errorMessage(err));
        setPhase("failed");
      }
    })();
    void refreshProgress(true);
    api
      .get<Page<unknown>>(`projects/${projectId}/rankings/`, { since: startOfToday(), limit: 1 })
      .then((page) => !cancelled && setToday((n) => Math.max(n ?? 0, page.count)))
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [projectId, show, refreshProgress]);

  // Keep the task across a reload (the server returns the same lease; this restores the marks).
  useEffect(() => {
    if (!lease || submitted.current.has(lease.assignment.id)) return;
    saveTask(lease.assignment.id, { ranking: toSaved(ranking), comment, startedAt });
  }, [lease, ranking, comment, startedAt]);

  useEffect(() => () => window.clearTimeout(skipTimer.current), []);

  // ---- submit and skip ----

  const submit = useCallback(async () => {
    const current = leaseRef.current;
    const state = rankingRef.current;
    if (!current || busyRef.current) return;
    if (!isComplete(state)) {
      setStatus(`Not yet: ${missingSummary(state, namesOf(state))}`);
      return;
    }
    const aid = current.assignment.id;
    // Built once: every retry sends exactly this body, and the server answers a repeat with the first ranking.
    const payload = buildPayload(
      state,
      current.completions.map((c) => c.id),
      { comment: commentRef.current.trim(), timeSpentMs: Date.now() - startedAtRef.current },
    );
    setBusy("submit");
    setSkipArmed(false);
    setError("");
    setStatus(sendingStatus(1));
    let attempt = 0;
    try {
      await withRetry(() => {
        attempt += 1;
        if (attempt > 1) setStatus(sendingStatus(attempt));
        return api.post(`assignments/${aid}/ranking/`, payload);
      }, RETRY_DELAYS);
      submitted.current.add(aid);
      forgetTask(aid);
      setToday((n) => (n ?? 0) + 1);
      setProgress((p) => (p ? { ...p, mine: p.mine + 1 } : p));
      setNotice("");
      setStatus("Saved.");
      void refreshProgress();
      await nextComparison("Saved.");
    } catch (err) {
      const failure = submitFailure(err);
      if (failure.kind === "gone") {
        submitted.current.add(aid);
        forgetTask(aid);
        setNotice(failure.notice);
        await nextComparison("Not stored.");
      } else {
        setBusy(null);
        setError(failure.error);
        setStatus("");
      }
    }
  }, [namesOf, nextComparison, refreshProgress]);

  const skip = useCallback(async () => {
    const current = leaseRef.current;
    if (!current || busyRef.current) return;
    if (!skipArmedRef.current) {
      setSkipArmed(true);
      setStatus("Press s again (or Confirm skip) to skip this comparison; Esc cancels.");
      return;
    }
    setSkipArmed(false);
    const aid = current.assignment.id;
    setBusy("skip");
    setError("");
    setStatus("Skipping…");
    try {
      await withRetry(() => api.post(`assignments/${aid}/skip/`), RETRY_DELAYS);
    } catch (err) {
      const failed = skipFailure(err);
      if (failed !== null) {
        setBusy(null);
        setError(failed);
        setStatus("");
        return;
      }
    }
    submitted.current.add(aid);
    forgetTask(aid);
    void refreshProgress();
    await nextComparison("Skipped.");
  }, [nextComparison, refreshProgress]);

  // After the lease expired: leave this comparison (the server never leases it to this labeler again)
  // and lease the next one. A late submit stays possible: it is stored if nobody took the slot.
  const leaveExpired = useCallback(() => {
    const current = leaseRef.current;
    if (!current || busyRef.current) return;
    submitted.current.add(current.assignment.id);
    forgetTask(current.assignment.id);
    setError("");
    void nextComparison("Your lease had expired.");
  }, [nextComparison]);

  // ---- commands (keys and the buttons that share them) ----

  /**
   * Carry out a ranking command (help and instructions are the view's). Returns "comment" when the
   * labeler may write the comment now: the view focuses its box.
   */
  const run = (command: Command): "comment" | undefined => {
    if (command.type === "escape") {
      if (skipArmedRef.current) {
        setSkipArmed(false);
        setStatus("Skip cancelled.");
      }
      return;
    }
    if (phase !== "ready" || busyRef.current) return;
    const state = rankingRef.current;
    const step = editStep(state, command, namesOf(state));
    switch (step?.type) {
      case "change":
        commit(step.next);
        setStatus(step.status);
        return;
      case "say":
        setStatus(step.status);
        return;
      case "submit":
        void submit();
        return;
      case "skip":
        void skip();
        return;
      case "comment":
        return "comment";
    }
  };

  return {
    project,
    criteria,
    lease,
    phase,
    fatal,
    ranking,
    comment,
    setComment,
    startedAt,
    busy,
    status,
    error,
    notice,
    dismissNotice: () => setNotice(""),
    skipArmed,
    today,
    progress,
    namesOf,
    apply,
    run,
    submit,
    skip,
    leaveExpired,
  };
}

export type LeaseQueue = ReturnType<typeof useLeaseQueue>;
