/**
 * One hyperparameter sweep (/projects/:id/admin/sweeps/:sweep in the project console, /sweeps/:id on
 * its own): its state, objective and budget, the best trial so far, a table of the trials (number,
 * state, parameters, value, run, duration; the best highlighted), the metric against each searched
 * parameter and the best so far by trial number, and Cancel while it runs. While it runs the page
 * asks again a while after each answer (one request at a time, as the rounds page does) and stops
 * once it has ended. A sweep the user may not see is a 404: the page says so.
 */
import { useEffect } from "react";
import { ApiError } from "../api";
import { Link } from "../router";
import { CancelAction, Fact, JsonBlock } from "../runs/PageParts";
import { stateTone } from "../runs/runEvents";
import { Badge, ErrorNote } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import { TrialPlot } from "./SweepCharts";
import { bestPlot, describeRange, directionText, formatDuration, formatParam, formatValue, paramPlots, searchedFields, trialMetric, trialsDone } from "./sweeps";
import { sweepsApi } from "./sweepsApi";
import type { Sweep, SweepDetail, SweepTrial } from "./types";

/** How long the page waits after an answer before asking again while the sweep runs (each answer reads the study). */
export const SWEEP_POLL_MS = 5000;

/** The highlight of the best trial's row (the kit has no row highlight of its own). */
const BEST_ROW = { background: "#eaf6ee" };

export function trialTone(state: string): "good" | "bad" | "busy" | "plain" {
  if (state === "complete") return "good";
  if (state === "failed") return "bad";
  if (state === "pruned") return "plain";
  return "busy";
}

/** `inConsole`: shown in a project's console, so runs link to the console's run pages. */
export function SweepPage({ sweepId, backHref, inConsole = false }: { sweepId: number; backHref: string; inConsole?: boolean }) {
  const sweep = useLoad(() => sweepsApi.get(sweepId), String(sweepId));
  const data = sweep.data;
  const live = data?.state === "running" && !sweep.error;

  useEffect(() => {
    if (!live || sweep.loading) return;
    const timer = setTimeout(() => void sweep.reload(), SWEEP_POLL_MS);
    return () => clearTimeout(timer);
  }, [live, sweep.loading, sweep.reload]);

  const runHref = (run: number) => (inConsole && data?.project ? `/projects/${data.project}/admin/runs/${run}` : `/runs/${run}`);
  const hidden = sweep.error instanceof ApiError && sweep.error.status === 404;

  return (
    <div className="stack sweep-page" data-state={data?.state}>
      <p className="small">
        <Link href={backHref}>← All sweeps</Link>
      </p>
      {hidden ? (
        <p className="card error" role="alert" data-testid="sweep-not-allowed">
          Sweep {sweepId} does not exist or you may not see it: a sweep is for the reviewers and admins of its project (platform staff for one outside a project).
        </p>
      ) : (
        <ErrorNote error={sweep.error} />
      )}
      {!data && !sweep.error && <p role="status">Loading sweep {sweepId}…</p>}
      {data && (
        <>
          <SweepHeader
            sweep={data}
            live={live}
            onCancelled={(answer) => {
              sweep.setData({ ...data, ...answer });
              void sweep.reload();
            }}
          />
          <BestSoFar sweep={data} runHref={runHref} />
          <TrialsTable sweep={data} runHref={runHref} />
          <SweepPlots sweep={data} />
          <SweepDetails sweep={data} />
        </>
      )}
    </div>
  );
}

function SweepHeader({ sweep, live, onCancelled }: { sweep: SweepDetail; live: boolean; onCancelled: (sweep: Sweep) => void }) {
  const done = trialsDone(sweep);
  return (
    <section className="card run-head" aria-label="Sweep">
      <header>
        <h2>
          Sweep {sweep.id} <span className="muted">· {sweep.kind}</span>
        </h2>
        <Badge tone={stateTone(sweep.state)}>
          <span data-testid="sweep-state">{sweep.state}</span>
        </Badge>
        {live && (
          <span className="muted small" data-testid="sweep-live">
            live: refreshes every {SWEEP_POLL_MS / 1000} s
          </span>
        )}
        <CancelSweep sweep={sweep} onCancelled={onCancelled} />
      </header>
      {sweep.error && (
        <p className={sweep.state === "failed" ? "run-error" : sweep.state === "cancelled" ? "muted" : "warning"} role={sweep.state === "failed" ? "alert" : undefined}>
          {sweep.error}
        </p>
      )}
      <dl className="run-facts">
        <Fact label="Metric">
          <code>{sweep.metric}</code> ({directionText(sweep.direction)})
        </Fact>
        <Fact label="Trials">
          <span data-testid="sweep-trials">
            {done} of {sweep.budget} done
          </span>
          {sweep.trials_live > 0 && <span className="muted">{` · ${sweep.trials_live} running`}</span>}
        </Fact>
        <Fact label="At once">{sweep.parallelism}</Fact>
        <Fact label="Sampler">
          {sweep.sampler === "tpe" ? "TPE" : "random"}
          {sweep.seed !== null ? ` · seed ${sweep.seed}` : ""}
        </Fact>
        <Fact label="Pruner">{sweep.pruner}</Fact>
        <Fact label="Alias">
          <code>{sweep.alias}</code>
        </Fact>
        <Fact label="Created">{formatWhen(sweep.created_at)}</Fact>
        <Fact label="Finished">{formatWhen(sweep.finished_at)}</Fact>
      </dl>
    </section>
  );
}

/** Cancel with a confirmation: no trial starts any more, queued runs are cancelled and running ones stopped. 409 once it has ended. */
function CancelSweep({ sweep, onCancelled }: { sweep: Sweep; onCancelled: (sweep: Sweep) => void }) {
  return (
    <CancelAction
      question={`Cancel sweep ${sweep.id}? No trial starts any more and its ${sweep.trials_live} running trials are stopped; this cannot be undone.`}
      cancel={async () => onCancelled(await sweepsApi.cancel(sweep.id))}
      label={(sending) => (sending ? "Cancelling…" : "Cancel sweep")}
      disabled={sweep.state !== "running"}
      hidden={sweep.state !== "running"}
    />
  );
}

function BestSoFar({ sweep, runHref }: { sweep: SweepDetail; runHref: (run: number) => string }) {
  const best = sweep.best;
  return (
    <section className="card" aria-label="Best so far" data-testid="sweep-best">
      <h2>Best so far</h2>
      {!best ? (
        <p className="muted">No trial has completed yet.</p>
      ) : (
        <>
          <p>
            <b>Trial {best.trial}</b>: <code>{sweep.metric}</code> <b data-testid="sweep-best-value">{formatValue(best.value)}</b>
            {best.run !== null && (
              <>
                {" · "}
                <Link href={runHref(best.run)}>Run {best.run}</Link>
              </>
            )}
            {best.version !== null && (
              <span className="muted">
                {" · "}model version id {best.version} is <code>{sweep.alias}</code>
              </span>
            )}
          </p>
          <p className="small">
            {Object.entries(best.params)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([name, value]) => (
              <span key={name} className="chip">
                <code>{name}</code> = {formatParam(value)}
              </span>
            ))}
          </p>
        </>
      )}
    </section>
  );
}

function TrialsTable({ sweep, runHref }: { sweep: SweepDetail; runHref: (run: number) => string }) {
  const fields = searchedFields(sweep);
  const trials = [...sweep.trials].sort((a, b) => a.number - b.number);
  const best = sweep.best?.trial ?? null;
  const notes = trials.some((t) => t.error);
  return (
    <section className="card" aria-label="Trials">
      <h2>Trials</h2>
      {trials.length === 0 ? (
        <p className="muted" role="status">
          {sweep.state === "running" ? "No trials yet: the first ones are being queued." : "This sweep ran no trials."}
        </p>
      ) : (
        <div className="rounds-table-wrap">
          <table className="table sweep-trials" aria-label="Trials">
            <thead>
              <tr>
                <th className="num">#</th>
                <th>State</th>
                {fields.map((f) => (
                  <th key={f} title={describeRange(sweep.search_space[f])}>
                    <code>{f}</code>
                  </th>
                ))}
                <th className="num">{sweep.metric}</th>
                <th>Run</th>
                <th className="num">Duration</th>
                {notes && <th>Note</th>}
              </tr>
            </thead>
            <tbody>
              {trials.map((trial) => (
                <TrialRow key={trial.number} trial={trial} fields={fields} best={trial.number === best} runHref={runHref} notes={notes} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function TrialRow({ trial, fields, best, runHref, notes }: { trial: SweepTrial; fields: string[]; best: boolean; runHref: (run: number) => string; notes: boolean }) {
  const metric = trialMetric(trial);
  const last = trial.intermediate_values.at(-1);
  const style = best ? BEST_ROW : undefined;
  return (
    <tr data-trial={trial.number} data-best={best || undefined} aria-current={best ? "true" : undefined}>
      <td className="num" style={style}>
        {trial.number}
      </td>
      <td style={style}>
        <Badge tone={trialTone(trial.state)}>{trial.state}</Badge>
        {best && (
          <>
            {" "}
            <Badge tone="good">best</Badge>
          </>
        )}
      </td>
      {fields.map((f) => (
        <td key={f} className="mono" style={style}>
          {f in trial.params ? formatParam(trial.params[f]) : "—"}
        </td>
      ))}
      <td className="num" style={style}>
        {metric && !metric.partial ? (
          best ? <b>{formatValue(metric.value)}</b> : formatValue(metric.value)
        ) : last ? (
          <span className="muted" title="The last value its run reported while training">
            {formatValue(last.value)} at step {last.step}
          </span>
        ) : (
          "—"
        )}
      </td>
      <td style={style}>
        {trial.run !== null ? (
          <>
            <Link href={runHref(trial.run)}>Run {trial.run}</Link>
            {trial.run_state && <span className="muted small">{` · ${trial.run_state}`}</span>}
          </>
        ) : (
          <span className="muted">not started</span>
        )}
      </td>
      <td className="num" style={style}>
        {formatDuration(trial.duration_s)}
      </td>
      {notes && (
        <td className="clip" style={style} title={trial.error || undefined}>
          {trial.error || ""}
        </td>
      )}
    </tr>
  );
}

function SweepPlots({ sweep }: { sweep: SweepDetail }) {
  if (sweep.trials.length === 0) return null;
  const best = sweep.best?.trial ?? null;
  const plots = paramPlots(sweep, sweep.trials, best);
  const progress = bestPlot(sweep.trials, sweep.direction, best, sweep.budget);
  return (
    <section className="card" aria-label="Plots">
      <h2>
        {sweep.metric} against each parameter <span className="muted small">({directionText(sweep.direction)})</span>
      </h2>
      <div className="chart-grid">
        <TrialPlot title={`${sweep.metric} by trial, best so far`} plot={progress.plot} line={progress.line} metric={sweep.metric} chart="best-so-far" />
        {plots.map((plot) => (
          <TrialPlot key={plot.field} title={`${sweep.metric} against ${plot.field}`} plot={plot} metric={sweep.metric} chart="param" />
        ))}
      </div>
    </section>
  );
}

function SweepDetails({ sweep }: { sweep: SweepDetail }) {
  return (
    <section className="card run-details">
      <h2>Search space, base config and inputs</h2>
      <div className="run-json-grid">
        <div>
          <h3>Search space</h3>
          <ul className="run-registered">
            {searchedFields(sweep).map((name) => (
              <li key={name}>
                <code>{name}</code>: {describeRange(sweep.search_space[name])}
              </li>
            ))}
          </ul>
        </div>
        <JsonBlock title="Base config" value={sweep.config} />
        <JsonBlock title="Inputs" value={sweep.inputs} />
      </div>
    </section>
  );
}
