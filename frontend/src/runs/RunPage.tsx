/**
 * One training run, live: state, progress, metric curves, the log tail and a Cancel button. It polls
 * while the run is not finished (useRunFeed) and stops once it is. Shown inside a project's console
 * (/projects/:id/admin/runs/:run) and on its own (/runs/:id) for runs outside a project. A sweep's trial
 * links to its sweep ("trial N of sweep M").
 */
import { api } from "../api";
import { GuardPanel } from "../rounds/GuardPanel";
import { Link } from "../router";
import { COLORS, StepChart } from "../ui/charts";
import { Badge, ErrorNote, ProgressBar } from "../ui/components";
import { formatWhen } from "../ui/format";
import { LogTail } from "./LogTail";
import { CancelAction, Fact, JsonBlock } from "./PageParts";
import { AiFeedbackSummary, Revisions } from "./Revisions";
import { canCancel, isTerminal, progressFraction, registeredVersions, stateTone, sweepHref, type Run } from "./runEvents";
import { useRunFeed } from "./useRunFeed";

const CURVE_COLORS = [COLORS.blue, COLORS.orange, COLORS.green, COLORS.red, COLORS.amber, COLORS.dark];

export function RunPage({ runId, backHref }: { runId: number; backHref?: string }) {
  const { run, feed, error, polling, replaceRun } = useRunFeed(runId);
  const back = backHref ?? (run?.project ? `/projects/${run.project}/admin/runs` : "/");
  const names = Object.keys(feed.metrics).sort();

  return (
    <div className="stack run-page" data-state={run?.state}>
      <p className="small">
        <Link href={back}>← All runs</Link>
      </p>
      <ErrorNote error={error} />
      {!run && !error && <p role="status">Loading run {runId}…</p>}
      {run && (
        <>
          <RunHeader run={run} polling={polling} onCancelled={replaceRun} />
          <RunOutputs run={run} />
          {run.kind === "ai_feedback" && <AiFeedbackSummary run={run} />}
          {run.kind === "cai_revise" && <Revisions run={run} />}
          {run.kind === "rlhf" && <GuardPanel run={run} />}
          <section className="card" aria-label="Metrics">
            <h2>Metrics</h2>
            {names.length === 0 ? (
              <p className="muted">{isTerminal(run.state) ? "This run reported no metrics." : "No metrics yet."}</p>
            ) : (
              <div className="chart-grid">
                {names.map((name, i) => (
                  <StepChart key={name} title={name} points={feed.metrics[name]} color={CURVE_COLORS[i % CURVE_COLORS.length]} />
                ))}
              </div>
            )}
          </section>
          <section className="card" aria-label="Log">
            <h2>Log</h2>
            <LogTail lines={feed.logs} dropped={feed.logsDropped} />
          </section>
          <RunDetails run={run} />
        </>
      )}
    </div>
  );
}

function RunHeader({ run, polling, onCancelled }: { run: Run; polling: boolean; onCancelled: (run: Run) => void }) {
  const fraction = progressFraction(run.progress_step, run.progress_total);
  return (
    <section className="card run-head">
      <header>
        <h2>
          Run {run.id} <span className="muted">· {run.kind}</span>
        </h2>
        <Badge tone={stateTone(run.state)}>
          <span data-testid="run-state">{run.state}</span>
        </Badge>
        {polling && !isTerminal(run.state) && <span className="muted small">live</span>}
        {run.round != null && run.project != null && (
          <Link href={`/projects/${run.project}/rounds`} className="small">
            in a round of the loop
          </Link>
        )}
        {run.sweep != null && (
          <Link href={sweepHref(run.sweep, run.project)} className="small" data-testid="run-sweep">
            {run.sweep_trial != null ? `trial ${run.sweep_trial} of sweep ${run.sweep}` : `a trial of sweep ${run.sweep}`}
          </Link>
        )}
        <CancelButton run={run} onCancelled={onCancelled} />
      </header>
      {fraction !== null ? (
        <div className="run-progress">
          <ProgressBar fraction={fraction} label="Run progress" />
          <span className="muted small">
            step {run.progress_step} of {run.progress_total}
          </span>
        </div>
      ) : (
        run.progress_step !== null && <p className="muted small">step {run.progress_step}</p>
      )}
      {run.error && (
        <p className="error run-error" role="alert">
          {run.error}
        </p>
      )}
      <dl className="run-facts">
        <Fact label="Worker">{run.worker_host ? `${run.worker_host}${run.pid ? ` (pid ${run.pid})` : ""}` : "—"}</Fact>
        <Fact label="Created">{formatWhen(run.created_at)}</Fact>
        <Fact label="Started">{formatWhen(run.started_at)}</Fact>
        <Fact label="Finished">{formatWhen(run.finished_at)}</Fact>
        <Fact label="Heartbeat">{formatWhen(run.heartbeat_at)}</Fact>
        <Fact label="Events">{run.last_seq}</Fact>
      </dl>
    </section>
  );
}

/** Cancel with a confirmation: queued runs stop at once, running ones become cancelling until the worker confirms. */
function CancelButton({ run, onCancelled }: { run: Run; onCancelled: (run: Run) => void }) {
  return (
    <CancelAction
      question={`Cancel run ${run.id} (${run.kind})? A running process is stopped; this cannot be undone.`}
      cancel={async () => onCancelled(await api.post<Run>(`runs/${run.id}/cancel/`))}
      label={(sending) =>
        sending ? "Cancelling…" : run.state === "cancelling" ? "Cancelling (waiting for the worker)…" : run.state === "cancelled" ? "Cancelled" : "Cancel run"
      }
      disabled={!canCancel(run.state)}
    />
  );
}

function RunOutputs({ run }: { run: Run }) {
  const registered = registeredVersions(run.outputs);
  const evaluated = run.outputs?.evaluated_version;
  if (registered.length === 0 && typeof evaluated !== "number") return null;
  const models = run.project ? `/projects/${run.project}/admin/models` : null;
  return (
    <section className="card" aria-label="Registered models">
      <h2>Registered models</h2>
      <ul className="run-registered">
        {registered.map((v) => (
          <li key={v.id}>
            <b>{v.model}</b> v{v.version}
            {v.role && <span className="muted"> ({v.role})</span>} <span className="muted small">version id {v.id}</span>
          </li>
        ))}
        {typeof evaluated === "number" && <li>Scores stored on model version id {evaluated}.</li>}
      </ul>
      {models && (
        <p className="small">
          <Link href={models}>See them in the Models tab</Link>
        </p>
      )}
    </section>
  );
}

function RunDetails({ run }: { run: Run }) {
  return (
    <section className="card run-details">
      <h2>Config, inputs and outputs</h2>
      <div className="run-json-grid">
        <JsonBlock title="Config" value={run.config} />
        <JsonBlock title="Inputs" value={run.inputs} />
        <JsonBlock title="Outputs" value={run.outputs} />
      </div>
    </section>
  );
}
