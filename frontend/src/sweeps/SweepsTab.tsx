/**
 * The sweeps you can see (GET /api/sweeps/, newest first): a project's in its console's Sweeps tab
 * (/projects/:id/admin/sweeps), every one on /sweeps. Each row: its state, kind, metric, the best so
 * far and trials done of the budget; it links to the sweep's page. The list refreshes itself while a
 * sweep runs. In a project, its admins get "Start a sweep" (StartSweepForm.tsx), as the Runs tab does.
 */
import { useEffect, useState } from "react";
import { Link } from "../router";
import { stateTone } from "../runs/runEvents";
import { Badge, ErrorNote } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import { StartSweepForm } from "./StartSweepForm";
import { directionArrow, directionText, formatValue, trialsDone } from "./sweeps";
import { sweepsApi } from "./sweepsApi";
import type { Sweep } from "./types";

export const SWEEPS_POLL_MS = 5000;

/** Without `projectId`: every sweep the user can see, each linking to /sweeps/:id. */
export function SweepsTab({ projectId, canStart = false }: { projectId?: number; canStart?: boolean }) {
  const sweeps = useLoad(() => sweepsApi.list(projectId), `sweeps:${projectId ?? "all"}`);
  const [starting, setStarting] = useState(false);
  const list = sweeps.data?.results ?? null;
  const live = (list ?? []).some((s) => s.state === "running") && !sweeps.error;

  useEffect(() => {
    if (!live || sweeps.loading) return;
    const timer = setTimeout(() => void sweeps.reload(), SWEEPS_POLL_MS);
    return () => clearTimeout(timer);
  }, [live, sweeps.loading, sweeps.reload]);

  const href = (sweep: Sweep) => (projectId !== undefined ? `/projects/${projectId}/admin/sweeps/${sweep.id}` : `/sweeps/${sweep.id}`);
  const more = sweeps.data && list && sweeps.data.count > list.length ? sweeps.data.count - list.length : 0;

  return (
    <div className="stack sweeps">
      {canStart && starting && projectId !== undefined && <StartSweepForm projectId={projectId} onCancel={() => setStarting(false)} />}
      <section className="card">
        <div className="editor-head">
          <h2>Hyperparameter sweeps</h2>
          {canStart && !starting && projectId !== undefined && (
            <button type="button" className="start-run-button" onClick={() => setStarting(true)}>
              Start a sweep
            </button>
          )}
        </div>
        <p className="muted small">
          A sweep searches a run kind’s config with Optuna (TPE or random sampling, median pruning): each trial is an ordinary run, the best trial’s model
          version gets the sweep’s alias when it ends.{projectId === undefined ? " Every sweep you can see, newest first." : " This project’s sweeps, newest first."}
        </p>
        <ErrorNote error={sweeps.error} />
        {!list && !sweeps.error && <p role="status">Loading sweeps…</p>}
        {list?.length === 0 && (
          <p role="status" data-testid="no-sweeps">
            No sweeps {projectId === undefined ? "you can see" : "in this project"} yet.
            {canStart ? " Start one with “Start a sweep”." : ""}
          </p>
        )}
        {list && list.length > 0 && (
          <table className="table sweeps-table" aria-label="Sweeps">
            <thead>
              <tr>
                <th>Sweep</th>
                {projectId === undefined && <th>Project</th>}
                <th>State</th>
                <th>Kind</th>
                <th>Metric</th>
                <th className="num">Best so far</th>
                <th className="num">Trials</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((sweep) => (
                <tr key={sweep.id} data-sweep={sweep.id}>
                  <td>
                    <Link href={href(sweep)}>Sweep {sweep.id}</Link>
                  </td>
                  {projectId === undefined && <td>{sweep.project !== null ? <Link href={`/projects/${sweep.project}/admin/sweeps`}>project {sweep.project}</Link> : <span className="muted">platform</span>}</td>}
                  <td>
                    <Badge tone={stateTone(sweep.state)}>{sweep.state}</Badge>
                  </td>
                  <td>{sweep.kind}</td>
                  <td title={directionText(sweep.direction)}>
                    <code>{sweep.metric}</code> {directionArrow(sweep.direction)}
                  </td>
                  <td className="num">
                    {sweep.best_value !== null ? (
                      <>
                        {formatValue(sweep.best_value)}
                        <span className="muted small">{` · trial ${sweep.best_trial}`}</span>
                      </>
                    ) : (
                      "—"
                    )}
                  </td>
                  <td className="num" data-testid="sweep-progress">
                    {trialsDone(sweep)} / {sweep.budget}
                    {sweep.trials_live > 0 && <span className="muted small">{` · ${sweep.trials_live} running`}</span>}
                  </td>
                  <td>{formatWhen(sweep.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {more > 0 && <p className="muted small">{more} older sweeps are not shown.</p>}
      </section>
    </div>
  );
}
