/**
 * The labeler workspace: one comparison at a time (the server's live lease), ranked with the keyboard
 * or the mouse, submitted with retries, then straight on to the next one.
 *
 * Keys are read on the window (see `commandForKey` in ranking.ts and the `?` overlay); the ranking
 * itself is the pure reducer in ranking.ts, kept in a ref as well as in state so that fast key
 * presses never read a stale ranking.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, NetworkError, api, withRetry, type Criterion, type Page, type Project } from "../api";
import { Link } from "../router";
import { CompletionCard, keepFocus, markLabel } from "./CompletionCard";
import { HelpOverlay } from "./HelpOverlay";
import { LeaseWarning } from "./LeaseWarning";
import { Markdown } from "./Markdown";
import { OrderBoard } from "./OrderBoard";
import {
  buildPayload,
  commandForKey,
  fromSaved,
  initRanking,
  isComplete,
  isOrderComplete,
  letter,
  missingSummary,
  rankingReducer,
  tieRank,
  toSaved,
  type Command,
  type RankingAction,
  type RankingState,
} from "./ranking";
import { forgetTask, loadTask, saveTask } from "./storage";
import { Timer } from "./Timer";
import type { LabelerStats, Lease } from "./types";

/** Retries of a submit, skip or next whose answer was lost: about 15 s in all. */
const RETRY_DELAYS = [300, 1000, 2000, 4000, 8000];
/** The project-wide progress costs the server a scan of the rankings: refresh it at most this often. */
const STATS_EVERY_MS = 30_000;
const SKIP_CONFIRM_MS = 4000;

type Phase = "loading" | "ready" | "done" | "failed";
type Busy = null | "submit" | "skip" | "next";

function message(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  if (error instanceof NetworkError) return "Could not reach the server. Check your connection and try again.";
  return error instanceof Error ? error.message : String(error);
}

function startOfToday(): string {
  const now = new Date();
  return new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString();
}

export function Workspace({ projectId }: { projectId: number }) {
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
  const [helpOpen, setHelpOpen] = useState(false);
  const [panelOpen, setPanelOpen] = useState(() => typeof window === "undefined" || window.innerWidth >= 1100);
  const [today, setToday] = useState<number | null>(null);
  const [progress, setProgress] = useState<{ left: number; total: number; mine: number } | null>(null);

  // Refs mirror what the window key handler and async flows read, so they never see stale values.
  const rankingRef = useRef(ranking);
  const leaseRef = useRef(lease);
  const busyRef = useRef<Busy>(null);
  const skipArmedRef = useRef(false);
  const skipTimer = useRef<number | undefined>(undefined);
  const commentRef = useRef(comment);
  const startedAtRef = useRef(startedAt);
  const metaRef = useRef<{ project: Project; criteria: Criterion[] } | null>(null);
  const submitted = useRef(new Set<number>());
  const statsAt = useRef(0);
  const rootRef = useRef<HTMLDivElement>(null);
  const commentBox = useRef<HTMLTextAreaElement>(null);
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

  const apply = useCallback((action: RankingAction): RankingState => {
    const next = rankingReducer(rankingRef.current, action);
    rankingRef.current = next;
    setRanking(next);
    return next;
  }, []);

  const criterionNames = useCallback(
    (state: RankingState) =>
      state.criteria?.map((id) => metaRef.current?.criteria.find((c) => c.id === id)?.name ?? `criterion ${id}`) ?? [],
    [],
  );

  // ---- loading ----

  const refreshProgress = useCallback(
    async (force = false) => {
      if (!force && Date.now() - statsAt.current < STATS_EVERY_MS) return;
      statsAt.current = Date.now();
      try {
        const stats = await api.get<LabelerStats>(`projects/${projectId}/stats/`);
        const p = stats.progress;
        setProgress({ left: Math.max(0, p.comparisons_total - p.complete), total: p.comparisons_total, mine: stats.labelers[0]?.rankings ?? 0 });
      } catch {
        /* progress is a nicety: the workspace works without it */
      }
    },
    [projectId],
  );

  const show = useCallback((next: Lease | undefined, meta: { project: Project; criteria: Criterion[] }) => {
    if (!next) {
      leaseRef.current = null;
      setLease(null);
      setPhase("done");
      setStatus("Nothing left to label in this project.");
      return;
    }
    const completions = [...next.completions].sort((a, b) => a.position - b.position);
    const keys = meta.project.rank_per_criterion ? meta.criteria.map((c) => c.id) : null;
    const aid = next.assignment.id;
    const saved = loadTask(aid);
    const state = fromSaved(completions.length, keys, saved?.ranking);
    const resumedAt = typeof saved?.startedAt === "number" && saved.startedAt <= Date.now() ? saved.startedAt : Date.now();
    const lease = { ...next, completions };
    rankingRef.current = state;
    leaseRef.current = lease;
    setRanking(state);
    setComment(typeof saved?.comment === "string" ? saved.comment : "");
    setStartedAt(resumedAt);
    setLease(lease);
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
        if (next) setStatus(`${before} Comparison ${next.comparison.id} is ready: completion A is selected.`.trim());
      } catch (err) {
        setFatal(message(err));
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
        const meta = { project: p, criteria: [...cs].sort((a, b) => a.position - b.position || a.id - b.id) };
        metaRef.current = meta;
        setProject(meta.project);
        setCriteria(meta.criteria);
        show(next, meta);
      } catch (err) {
        if (cancelled) return;
        setFatal(message(err));
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

  // Keep the selected completion in view.
  useEffect(() => {
    if (phase !== "ready") return;
    const card = rootRef.current?.querySelector<HTMLElement>(".lw-card.selected");
    card?.scrollIntoView?.({ block: "nearest", inline: "nearest" });
  }, [ranking.selected, ranking.active, phase]);

  // ---- submit and skip ----

  const submit = useCallback(async () => {
    const current = leaseRef.current;
    const state = rankingRef.current;
    if (!current || busyRef.current) return;
    if (!isComplete(state)) {
      setStatus(`Not yet: ${missingSummary(state, criterionNames(state))}`);
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
    setStatus("Saving your ranking…");
    let attempt = 0;
    try {
      await withRetry(() => {
        attempt += 1;
        if (attempt > 1) setStatus(`The connection dropped — sending your ranking again (attempt ${attempt})…`);
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
      if (err instanceof ApiError && err.status === 409) {
        // The lease expired and its slot went to someone else (or it was skipped): say so, move on.
        submitted.current.add(aid);
        forgetTask(aid);
        setNotice(err.detail);
        await nextComparison("Not stored.");
      } else {
        setBusy(null);
        setError(
          err instanceof ApiError
            ? `The server refused this ranking: ${err.detail}`
            : "Could not reach the server after several tries. Your ranking is kept here: press Enter or Submit to send it again.",
        );
        setStatus("");
      }
    }
  }, [criterionNames, nextComparison, refreshProgress]);

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
      if (!(err instanceof ApiError && err.status === 409)) {
        setBusy(null);
        setError(`Could not skip: ${message(err)}`);
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

  // ---- keyboard ----

  const announceMark = (state: RankingState, orderIndex: number, index: number) => {
    const names = criterionNames(state);
    const where = state.criteria ? `${names[orderIndex]}: ` : "";
    let text = `${where}${letter(index)}: ${markLabel(state.orders[orderIndex].marks[index])}.`;
    if (isComplete(state)) text += " All ranked — press Enter to submit.";
    else if (state.active !== orderIndex) text += ` ${names[orderIndex]} done; now ranking ${names[state.active]}, ${letter(state.selected)} selected.`;
    else text += ` ${letter(state.selected)} selected.`;
    setStatus(text);
  };

  const run = (command: Command) => {
    const state = rankingRef.current;
    const editing = phase === "ready" && !busyRef.current;
    switch (command.type) {
      case "help":
        setHelpOpen(true);
        return;
      case "instructions":
        setPanelOpen((open) => !open);
        return;
      case "escape":
        if (skipArmedRef.current) {
          setSkipArmed(false);
          setStatus("Skip cancelled.");
        }
        return;
    }
    if (!editing) return;
    switch (command.type) {
      case "rank":
      case "fail":
      case "tie": {
        const index = state.selected;
        if (command.type === "tie" && tieRank(state) === null) {
          setStatus("Nothing to tie with yet: give a rank first.");
          return;
        }
        const action: RankingAction =
          command.type === "rank" ? { type: "rank", rank: command.rank, advance: true } : { type: command.type, advance: true };
        announceMark(apply(action), state.active, index);
        return;
      }
      case "clear": {
        announceMark(apply({ type: "clear" }), state.active, state.selected);
        return;
      }
      case "undo": {
        if (!state.history.length) {
          setStatus("Nothing to undo.");
          return;
        }
        const next = apply({ type: "undo" });
        setStatus(`Undone. ${letter(next.selected)} selected: ${markLabel(next.orders[next.active].marks[next.selected])}.`);
        return;
      }
      case "next":
      case "prev": {
        const next = apply({ type: "move", delta: command.type === "next" ? 1 : -1 });
        setStatus(`${letter(next.selected)} selected: ${markLabel(next.orders[next.active].marks[next.selected])}.`);
        return;
      }
      case "nextCriterion":
      case "prevCriterion": {
        if (!state.criteria || state.criteria.length < 2) return;
        const next = apply({ type: "cycleCriterion", delta: command.type === "nextCriterion" ? 1 : -1 });
        setStatus(`Now ranking ${criterionNames(next)[next.active]}.`);
        return;
      }
      case "submit":
        void submit();
        return;
      case "skip":
        void skip();
        return;
      case "comment":
        commentBox.current?.focus();
        return;
    }
  };
  const runRef = useRef(run);
  runRef.current = run;
  const helpOpenRef = useRef(helpOpen);
  helpOpenRef.current = helpOpen;
  const kRef = useRef(ranking.k);
  kRef.current = ranking.k;

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.defaultPrevented || event.isComposing) return;
      const target = event.target instanceof HTMLElement ? event.target : null;
      if (target?.closest("input, textarea, select, [contenteditable='true']")) {
        if (event.key === "Escape") {
          event.preventDefault();
          target.blur();
          rootRef.current?.focus();
        } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.closest(".lw")) {
          event.preventDefault();
          runRef.current({ type: "submit" });
        }
        return;
      }
      if (helpOpenRef.current) {
        if (event.key === "Escape" || event.key === "?") {
          event.preventDefault();
          setHelpOpen(false);
        }
        return;
      }
      const command = commandForKey(event, kRef.current);
      if (!command) return;
      // A focused button or link answers Enter itself.
      if (command.type === "submit" && target?.closest("button, a, [role='button']")) return;
      event.preventDefault();
      runRef.current(command);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  // ---- rendering ----

  if (phase === "failed") {
    return (
      <section className="lw-message card">
        <h1>Cannot label right now</h1>
        <p className="error" role="alert">
          {fatal}
        </p>
        <div className="actions">
          <button type="button" onClick={() => window.location.reload()}>
            Try again
          </button>
          <Link className="button secondary" href="/">
            Back to your projects
          </Link>
        </div>
      </section>
    );
  }
  if (phase === "loading" || !project) {
    return (
      <p className="center" role="status">
        Loading your next comparison…
      </p>
    );
  }
  if (phase === "done" || !lease) {
    return (
      <section className="lw-message card">
        <h1>Nothing left to label — thank you!</h1>
        {notice && (
          <p className="lw-notice" role="alert">
            {notice}
          </p>
        )}
        <p>
          {today !== null ? `You ranked ${today} comparison${today === 1 ? "" : "s"} today in ${project.name}. ` : ""}
          Every comparison you can label here is done or leased to someone else; come back later for more.
        </p>
        <Link className="button" href="/">
          Back to your projects
        </Link>
      </section>
    );
  }

  const k = ranking.k;
  const order = ranking.orders[ranking.active];
  const complete = isComplete(ranking);
  const names = criterionNames(ranking);
  const activeCriterion = ranking.criteria ? criteria.find((c) => c.id === ranking.criteria![ranking.active]) : undefined;
  const disabled = busy !== null;
  const texts = lease.completions.map((c) => c.text);

  return (
    <div
      className={`lw${busy ? " busy" : ""}${panelOpen ? " with-panel" : ""}`}
      ref={rootRef}
      tabIndex={-1}
      aria-busy={busy !== null}
      data-assignment={lease.assignment.id}
    >
      <header className="lw-bar">
        <div className="lw-title">
          <h1>{project.name}</h1>
          <span className="muted" data-testid="task-id">
            Task #{lease.assignment.id}
          </span>
        </div>
        <div className="lw-stats" aria-label="Progress">
          <span>
            <span className="lw-stat-label">Today</span>
            <b data-testid="today-count">{today ?? "…"}</b>
          </span>
          <span>
            <span className="lw-stat-label">Left in project</span>
            <b data-testid="left-count">{progress ? progress.left : "…"}</b>
            {progress && <span className="muted"> / {progress.total}</span>}
          </span>
          <Timer startedAt={startedAt} paused={busy === "submit"} />
        </div>
        <div className="lw-tools">
          <button
            type="button"
            className="secondary"
            aria-expanded={panelOpen}
            aria-controls="lw-panel"
            onMouseDown={keepFocus} onClick={() => setPanelOpen((open) => !open)}
            title="Show or hide the instructions (i)"
          >
            Instructions
          </button>
          <button type="button" className="secondary" aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" onClick={() => setHelpOpen(true)}>
            ?
          </button>
        </div>
      </header>

      {notice && (
        <div className="lw-notice" role="alert">
          <span>{notice}</span>
          <button type="button" className="link" onClick={() => setNotice("")}>
            Dismiss
          </button>
        </div>
      )}

      <LeaseWarning key={lease.assignment.id} lease={lease.assignment} onNext={leaveExpired} disabled={busy !== null} />

      <div className="lw-body">
        <div className="lw-main">
          {ranking.criteria && (
            <div className="lw-criteria" role="tablist" aria-label="Criteria ([ and ] switch)">
              {ranking.criteria.map((id, o) => (
                <button
                  key={id}
                  type="button"
                  role="tab"
                  aria-selected={o === ranking.active}
                  className={`lw-tab${o === ranking.active ? " active" : ""}${isOrderComplete(ranking.orders[o]) ? " done" : ""}`}
                  onMouseDown={keepFocus} onClick={() => apply({ type: "criterion", index: o })}
                >
                  {names[o]}
                  <span className="lw-tab-state">
                    {isOrderComplete(ranking.orders[o])
                      ? " ✓"
                      : ` ${ranking.orders[o].marks.filter((m) => m !== null).length}/${k}`}
                  </span>
                </button>
              ))}
              <span className="muted lw-criteria-hint">
                Ranking by <b data-testid="active-criterion">{names[ranking.active]}</b>
                {activeCriterion?.instructions ? ` — ${activeCriterion.instructions.split("\n")[0].slice(0, 120)}` : ""}
              </span>
            </div>
          )}

          <section className="lw-prompt" aria-labelledby="lw-prompt-title">
            <h2 id="lw-prompt-title">Prompt</h2>
            <div className="lw-prompt-text" tabIndex={0} aria-label="Prompt text" data-testid="prompt">
              {lease.comparison.prompt}
            </div>
          </section>

          <div className="lw-completions" style={{ ["--lw-k" as string]: String(Math.min(k, 4)) }}>
            {lease.completions.map((completion, i) => (
              <CompletionCard
                key={completion.id}
                index={i}
                text={completion.text}
                k={k}
                mark={order.marks[i]}
                selected={i === ranking.selected}
                disabled={disabled}
                summary={
                  ranking.criteria && ranking.criteria.length > 1
                    ? ranking.orders.map((o, c) => ({ name: names[c], mark: o.marks[i], active: c === ranking.active }))
                    : null
                }
                apply={apply}
              />
            ))}
          </div>

          <OrderBoard
            order={order}
            k={k}
            texts={texts}
            selected={ranking.selected}
            disabled={disabled}
            title={ranking.criteria ? `Order for ${names[ranking.active]}` : "Your order"}
            apply={apply}
          />

          <div className="lw-footer">
            <label className="lw-comment">
              <span className="visually-hidden">Comment (optional)</span>
              <textarea
                ref={commentBox}
                rows={1}
                value={comment}
                placeholder="Comment (optional) — press c"
                onChange={(event) => setComment(event.target.value)}
                disabled={disabled}
                aria-label="Comment (optional)"
              />
            </label>
            <div className="lw-actions">
              <button type="button" className="secondary" onMouseDown={keepFocus} onClick={() => run({ type: "undo" })} disabled={disabled || !ranking.history.length} title="Undo (u)">
                Undo
              </button>
              <button type="button" className="secondary" onMouseDown={keepFocus} onClick={() => apply({ type: "clearAll" })} disabled={disabled} title="Clear this order">
                Clear
              </button>
              <button
                type="button"
                className={`secondary${skipArmed ? " lw-danger" : ""}`}
                onClick={() => void skip()}
                disabled={disabled}
                title="Skip this comparison (s s)"
              >
                {skipArmed ? "Confirm skip" : "Skip"}
              </button>
              <button type="button" className="lw-submit" onClick={() => void submit()} disabled={disabled || !complete} title="Submit (Enter)">
                {busy === "submit" ? "Saving…" : busy === "next" ? "Loading…" : "Submit"}
              </button>
            </div>
            <div className="lw-messages">
              <p className={`lw-hint${complete ? " ok" : ""}`}>
                {complete ? "Ready — press Enter to submit." : missingSummary(ranking, names)}
              </p>
              <p className="lw-status" role="status" aria-live="polite" data-testid="status">
                {status}
              </p>
            </div>
            {error && (
              <p className="error lw-error" role="alert">
                {error}
              </p>
            )}
          </div>
        </div>

        {panelOpen && (
          <aside className="lw-panel" id="lw-panel" aria-label="Instructions">
            <h2>Instructions</h2>
            {project.instructions.trim() ? (
              <Markdown className="lw-md" source={project.instructions} />
            ) : (
              <p className="muted">This project has no written instructions.</p>
            )}
            {criteria.length > 0 && (
              <>
                <h2>Criteria</h2>
                {criteria.map((criterion) => (
                  <section
                    key={criterion.id}
                    className={`lw-criterion${activeCriterion?.id === criterion.id ? " active" : ""}`}
                    aria-current={activeCriterion?.id === criterion.id ? "true" : undefined}
                  >
                    <h3>{criterion.name}</h3>
                    {criterion.instructions.trim() ? (
                      <Markdown className="lw-md" source={criterion.instructions} />
                    ) : (
                      <p className="muted">No instructions.</p>
                    )}
                  </section>
                ))}
              </>
            )}
            <p className="muted lw-panel-keys">
              Press <kbd>?</kbd> for the keyboard shortcuts, <kbd>i</kbd> to hide this panel.
            </p>
          </aside>
        )}
      </div>

      {helpOpen && <HelpOverlay k={k} onClose={() => setHelpOpen(false)} />}
    </div>
  );
}
