/**
 * A project's rounds of the loop (/projects/:id/rounds, in the project console): each round a
 * column, its figures in rows (what it generated and collected, the reward model's accuracy, the
 * policy's held-out reward and KL, what it registered, the human win rate against its base, the
 * guard), a plot across rounds, and for project admins the "Start next round" form. While a run of
 * a round is queued, running or cancelling the page refreshes itself (runsInFlight, join.ts), one
 * request at a time; it stops when every run is finished.
 */
import { useEffect, useState, type ReactNode } from "react";
import type { Project } from "../api";
import { Link } from "../router";
import { stateTone } from "../runs/runEvents";
import { COLORS, TimeSeriesChart } from "../ui/charts";
import { Badge, ErrorNote } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import { formatNumber, formatPercent } from "../ui/scale";
import { runsInFlight } from "./join";
import {
  flagCount,
  formatAgreement,
  formatChange,
  formatFlags,
  formatPutBack,
  formatWinRate,
  guardPutBack,
  hasValues,
  heldoutReward,
  klAfter,
  rewardAccuracy,
  roundName,
  roundSeries,
  runOf,
  sortRounds,
  trend,
} from "./rounds";
import { roundsApi } from "./roundsApi";
import { StartRoundForm } from "./StartRoundForm";
import type { Round } from "./types";

/** How long the page waits after an answer before asking again while a run is in flight (the
 * answer recomputes each round's figures, evaluation results included: not every second). */
export const ROUNDS_POLL_MS = 5000;

export function RoundsPage({ project, canEdit }: { project: Project; canEdit: boolean }) {
  const rounds = useLoad(() => roundsApi.list(project.id), String(project.id));
  const [starting, setStarting] = useState(false);
  const [started, setStarted] = useState<Round | null>(null);
  const list = rounds.data ? sortRounds(rounds.data) : null;
  const inFlight = runsInFlight(rounds.data).length;
  const live = inFlight > 0 && !rounds.error;

  // Ask again a while after each answer, never while a request is out.
  useEffect(() => {
    if (!live || rounds.loading) return;
    const timer = setTimeout(() => void rounds.reload(), ROUNDS_POLL_MS);
    return () => clearTimeout(timer);
  }, [live, rounds.loading, rounds.reload]);

  const onStarted = (round: Round) => {
    setStarting(false);
    setStarted(round);
    void rounds.reload();
  };

  return (
    <div className="stack rounds">
      <section className="card">
        <div className="editor-head">
          <h2>Rounds of the loop</h2>
          <button type="button" className="secondary small-button" onClick={() => void rounds.reload()} disabled={rounds.loading}>
            {rounds.loading && rounds.data ? "Refreshing…" : "Refresh"}
          </button>
          {canEdit && !starting && (
            <button type="button" className="start-run-button" onClick={() => {
                setStarting(true);
                setStarted(null);
              }}>
              Start next round
            </button>
          )}
        </div>
        <p className="muted small">
          A round generates with a registered version, is labeled, trains a reward model and a policy (RLHF or DPO), is evaluated side by side against its base,
          and registers what it made; the next round starts from that version and puts the RLHF run’s best- and worst-scored samples back to labelers. Runs and
          evaluations join a round with <code>round</code> when they are started.
        </p>
        {live && (
          <p className="muted small" data-testid="rounds-live">
            {inFlight} {inFlight === 1 ? "run is" : "runs are"} queued or running: this page refreshes itself every {ROUNDS_POLL_MS / 1000} s until they finish.
          </p>
        )}
        {started && (
          <p className="ok" role="status">
            {roundName(started)} started
            {started.generation_run !== null && (
              <>
                : generation <Link href={`/runs/${started.generation_run}`}>run {started.generation_run}</Link> queued
              </>
            )}
            .
          </p>
        )}
      </section>
      {starting && <StartRoundForm projectId={project.id} rounds={list ?? []} onStarted={onStarted} onCancel={() => setStarting(false)} />}
      <ErrorNote error={rounds.error} />
      {!list && !rounds.error && <p role="status">Loading rounds…</p>}
      {list && list.length === 0 && (
        <p className="card muted" role="status" data-testid="no-rounds">
          No rounds yet.{canEdit ? " Start the first one from a registered version with “Start next round”." : " A project admin starts them."}
        </p>
      )}
      {list && list.length > 0 && (
        <>
          <RoundsTable rounds={list} />
          <RoundCharts rounds={list} />
        </>
      )}
    </div>
  );
}

type Figure = { key: string; label: string; hint?: string; cell: (round: Round) => ReactNode };

const dash = "—";

function RunLink({ id }: { id: number }) {
  return <Link href={`/runs/${id}`}>Run {id}</Link>;
}

const FIGURES: Figure[] = [
  { key: "base", label: "Base version", hint: "The version that generated this round’s answers.", cell: (r) => r.base_version.label },
  {
    key: "generation",
    label: "Generation run",
    cell: (r) => {
      if (r.generation_run === null) return dash;
      const run = runOf(r, r.generation_run);
      return (
        <>
          <RunLink id={r.generation_run} /> {run && <Badge tone={stateTone(run.state)}>{run.state}</Badge>}
        </>
      );
    },
  },
  { key: "comparisons", label: "Comparisons", hint: "Built from the generation run’s answers.", cell: (r) => String(r.labeling.comparisons) },
  { key: "rankings", label: "Human rankings", cell: (r) => String(r.labeling.rankings) },
  { key: "pairs", label: "Pairs collected", hint: "Strict preference pairs in the human rankings.", cell: (r) => String(r.labeling.pairs) },
  { key: "agreement", label: "Labeler agreement", hint: "Pairwise, between labelers who ranked the same comparison.", cell: (r) => formatAgreement(r.labeling) },
  {
    key: "reward_model",
    label: "Reward-model accuracy",
    hint: "Held-out pairwise accuracy (eval_accuracy).",
    cell: (r) => {
      if (!r.reward_model) return dash;
      const accuracy = rewardAccuracy(r);
      return (
        <>
          {accuracy === null ? "not reported" : formatPercent(accuracy, 1)} <span className="muted small">·</span> <RunLink id={r.reward_model.run} />
        </>
      );
    },
  },
  {
    key: "policy",
    label: "Policy run",
    cell: (r) =>
      r.policy ? (
        <>
          {r.policy.kind} <span className="muted small">·</span> <RunLink id={r.policy.run} />
        </>
      ) : (
        dash
      ),
  },
  {
    key: "heldout",
    label: "Held-out reward",
    hint: "The held-out reward model’s score of the reference → the policy.",
    cell: (r) => {
      const change = heldoutReward(r);
      const direction = trend(change);
      return (
        <span className={direction === "down" || direction === "flat" ? "worse" : undefined} data-trend={direction ?? undefined} title={change ? `from the ${change.source}` : undefined}>
          {formatChange(change)}
        </span>
      );
    },
  },
  { key: "kl", label: "KL from the reference", hint: "On held-out prompts (eval_kl_after).", cell: (r) => formatNumber(klAfter(r), 4) },
  { key: "versions", label: "Versions registered", cell: (r) => (r.versions.length ? r.versions.map((v) => v.label).join(", ") : dash) },
  {
    key: "snapshots",
    label: "Snapshots trained on",
    cell: (r) =>
      r.snapshots?.length ? (
        <Link href={`/projects/${r.project}/admin/snapshots`}>{r.snapshots.map((id) => `#${id}`).join(", ")}</Link>
      ) : (
        dash
      ),
  },
  {
    key: "win_rate",
    label: "Human win rate vs base",
    hint: "The new version against the round’s base, side by side, with its 95% interval.",
    cell: (r) => {
      const win = r.human_win_rate;
      if (!win) return r.evaluations.length ? <span className="muted small">no votes yet</span> : dash;
      return (
        <>
          <Link href={`/evaluations/${win.evaluation}`}>{formatWinRate(win)}</Link> <span className="muted small">n = {win.n}</span>
        </>
      );
    },
  },
  {
    key: "flags",
    label: "Guard flags",
    hint: "Signs of reward hacking on the round’s RLHF run.",
    cell: (r) => {
      const count = flagCount(r);
      if (count === null || !r.guard) return dash;
      return (
        <Link href={`/runs/${r.guard.run}`} title={r.guard.flags.map((f) => f.code).join(", ")}>
          <Badge tone={count > 0 ? "bad" : "good"}>{formatFlags(count)}</Badge>
        </Link>
      );
    },
  },
  {
    key: "guard_samples",
    label: "Guard samples put back",
    hint: "The previous round’s RLHF samples, best- and worst-scored, back to labelers.",
    cell: (r) => {
      const put = guardPutBack(r.guard_samples);
      if (put.kind === "none") return dash;
      return (
        <>
          <span className={put.kind === "skipped" ? "muted small" : undefined}>{formatPutBack(put)}</span>
          {put.run !== null && (
            <>
              {" "}
              <span className="muted small">from</span> <RunLink id={put.run} />
            </>
          )}
        </>
      );
    },
  },
];

function RoundsTable({ rounds }: { rounds: Round[] }) {
  return (
    <section className="card rounds-table-wrap">
      <table className="table rounds-table" aria-label="Rounds side by side">
        <thead>
          <tr>
            <th scope="col">Figure</th>
            {rounds.map((r) => (
              <th key={r.id} scope="col" data-round={r.id}>
                <span className="round-name">{roundName(r)}</span>
                <span className="muted small"> {formatWhen(r.created_at)}</span>
                {r.note && <div className="round-note">{r.note}</div>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {FIGURES.map((figure) => (
            <tr key={figure.key} data-figure={figure.key}>
              <th scope="row" title={figure.hint}>
                {figure.label}
              </th>
              {rounds.map((r) => (
                <td key={r.id} data-round={r.id}>
                  {figure.cell(r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function RoundCharts({ rounds }: { rounds: Round[] }) {
  const series = roundSeries(rounds);
  const heldout = hasValues(series.heldoutBefore) || hasValues(series.heldoutAfter);
  const win = hasValues(series.winRate);
  if (!heldout && !win) return null;
  return (
    <section className="card" aria-label="Across rounds">
      <h2>Across rounds</h2>
      <div className="chart-grid">
        {heldout && (
          <TimeSeriesChart
            title="Held-out reward by round"
            labels={series.labels}
            yFormat={(v) => formatNumber(v, 2)}
            series={[
              { name: "reference (before)", color: COLORS.gray, values: series.heldoutBefore, kind: "line", dots: true },
              { name: "policy (after)", color: COLORS.blue, values: series.heldoutAfter, kind: "line", dots: true },
            ]}
          />
        )}
        {win && (
          <TimeSeriesChart
            title="Human win rate against the base by round"
            labels={series.labels}
            yDomain={[0, 1]}
            yFormat={(v) => formatPercent(v, 0)}
            reference={{ value: 0.5, label: "50%: no better" }}
            series={[{ name: "new version vs base", color: COLORS.green, values: series.winRate, kind: "line", dots: true }]}
          />
        )}
      </div>
    </section>
  );
}
