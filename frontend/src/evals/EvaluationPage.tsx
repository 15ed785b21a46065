/**
 * One side-by-side evaluation (/evaluations/:id): status and progress of generation and labeling, a
 * link to label it, then the leaderboard per criterion. The evaluation is polled while it still
 * changes; the results are fetched again whenever the label count or the status moves.
 */
import { useEffect, useState, type ReactNode } from "react";
import { api, type Project } from "../api";
import { Link } from "../router";
import { stateTone } from "../runs/runEvents";
import { Badge, ErrorNote, ProgressBar } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import { CriterionPanel } from "./CriterionPanel";
import { evalApi } from "./evalApi";
import { criterionKey, entryName, isLive, labelFraction, orderedCriteria, statusTone } from "./leaderboard";
import type { Evaluation } from "./types";

const POLL_MS = 5000;

export function EvaluationPage({ evaluationId }: { evaluationId: number }) {
  const evaluation = useLoad(() => evalApi.get(evaluationId), String(evaluationId));
  const ev = evaluation.data;
  const live = !!ev && isLive(ev.status);
  const { reload } = evaluation;
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => void reload(), POLL_MS);
    return () => clearInterval(timer);
  }, [live, reload]);

  return (
    <section className="console evals">
      <p className="small">
        <Link href={ev?.source_project ? `/evaluations?project=${ev.source_project}` : "/evaluations"}>← All evaluations</Link>
      </p>
      <ErrorNote error={evaluation.error} />
      {!ev && !evaluation.error && <p role="status">Loading evaluation {evaluationId}…</p>}
      {ev && <EvaluationBody evaluation={ev} live={live} onChange={evaluation.setData} />}
    </section>
  );
}

function EvaluationBody({ evaluation, live, onChange }: { evaluation: Evaluation; live: boolean; onChange: (ev: Evaluation) => void }) {
  const project = useLoad(() => api.get<Project>(`projects/${evaluation.project}/`), String(evaluation.project));
  const resultsKey = `${evaluation.id}:${evaluation.status}:${evaluation.progress.labels}`;
  const results = useLoad(() => evalApi.results(evaluation.id), resultsKey);
  const criteria = orderedCriteria(results.data?.criteria ?? []);
  const [chosen, setChosen] = useState("overall");
  const criterion = criteria.find((c) => criterionKey(c.id) === chosen) ?? criteria[0];
  const isAdmin = project.data?.role === "admin";

  return (
    <div className="stack" data-status={evaluation.status}>
      <Header evaluation={evaluation} live={live} isAdmin={isAdmin} onPublished={onChange} />
      <Progress evaluation={evaluation} />
      <ErrorNote error={results.error} />
      {!results.data && !results.error && <p role="status">Loading results…</p>}
      {results.data && criteria.length > 1 && (
        <div className="card controls">
          <label>
            Criterion{" "}
            <select value={criterion ? criterionKey(criterion.id) : ""} onChange={(e) => setChosen(e.target.value)}>
              {criteria.map((c) => (
                <option key={criterionKey(c.id)} value={criterionKey(c.id)}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
          <span className="muted small">The project ranks per criterion: each has its own leaderboard.</span>
        </div>
      )}
      {results.data && criterion && <CriterionPanel evaluation={evaluation} results={results.data} criterion={criterion} />}
    </div>
  );
}

function Header({ evaluation, live, isAdmin, onPublished }: { evaluation: Evaluation; live: boolean; isAdmin: boolean; onPublished: (ev: Evaluation) => void }) {
  return (
    <section className="card eval-head">
      <header>
        <h1>{evaluation.name || `Evaluation ${evaluation.id}`}</h1>
        <Badge tone={statusTone(evaluation.status)}>
          <span data-testid="eval-status">{evaluation.status}</span>
        </Badge>
        {live && <span className="muted small">live</span>}
        <span className="eval-actions">
          <Link className="button" href={`/projects/${evaluation.project}/label`}>
            Label this evaluation
          </Link>
          {isAdmin && <PublishButton evaluation={evaluation} onPublished={onPublished} />}
        </span>
      </header>
      <dl className="run-facts">
        <Fact label="Versions">{evaluation.entries.map(entryName).join(" · ")}</Fact>
        <Fact label="Prompts">
          {evaluation.dataset ? `dataset ${evaluation.dataset}` : "a deleted dataset"}, {evaluation.split || "every"} split
        </Fact>
        <Fact label="Seed">{evaluation.seed}</Fact>
        <Fact label="Created">{formatWhen(evaluation.created_at)}</Fact>
        <Fact label="Published">
          <span data-testid="published-at">{evaluation.published_at ? formatWhen(evaluation.published_at) : "not yet"}</span>
        </Fact>
        <Fact label="Projects">
          <Link href={`/projects/${evaluation.project}/admin`}>evaluation project</Link>
          {evaluation.source_project && (
            <>
              {" "}
              · from <Link href={`/evaluations?project=${evaluation.source_project}`}>project {evaluation.source_project}</Link>
            </>
          )}
        </Fact>
      </dl>
    </section>
  );
}

/** POST publish: the results are stored on each version (metrics.human_evals) and show in the registry. */
function PublishButton({ evaluation, onPublished }: { evaluation: Evaluation; onPublished: (ev: Evaluation) => void }) {
  const [sending, setSending] = useState(false);
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const publish = async () => {
    setSending(true);
    setDone(false);
    setError(null);
    try {
      onPublished(await evalApi.publish(evaluation.id));
      setDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setSending(false);
    }
  };
  return (
    <>
      <button
        type="button"
        className="secondary"
        onClick={() => void publish()}
        disabled={sending || evaluation.progress.labels === 0}
        title={evaluation.progress.labels === 0 ? "Nothing to publish yet: no human labels." : "Store these results on each version in the registry."}
      >
        {sending ? "Publishing…" : evaluation.published_at ? "Publish again" : "Publish to registry"}
      </button>
      {done && (
        <span className="ok small" role="status">
          Published: stored on each version’s metrics
        </span>
      )}
      <ErrorNote error={error} />
    </>
  );
}

function Progress({ evaluation }: { evaluation: Evaluation }) {
  const p = evaluation.progress;
  const fraction = labelFraction(p);
  return (
    <section className="card" aria-label="Progress">
      <h2>Progress</h2>
      <div className="run-progress">
        <ProgressBar fraction={fraction ?? 0} label="Labels" />
        <span className="muted small" data-testid="labels">
          {p.labels} of {p.labels_needed} labels
        </span>
      </div>
      <p className="muted small">
        {p.prompts} prompts · {p.comparisons} of {p.pairs_expected} comparisons built · {p.complete} fully labeled · {p.overlap} labelers each
      </p>
      <table className="table compact" aria-label="Versions and their generation runs">
        <thead>
          <tr>
            <th>Version</th>
            <th>Generation run</th>
            <th className="num">Answers</th>
          </tr>
        </thead>
        <tbody>
          {evaluation.entries.map((e) => (
            <tr key={e.id} data-entry={e.id}>
              <td>
                <b>{entryName(e)}</b> <span className="muted small">version id {e.version}</span>
              </td>
              <td>
                {e.run ? <Link href={`/runs/${e.run}`}>Run {e.run}</Link> : "—"}{" "}
                {e.run_state && <Badge tone={stateTone(e.run_state)}>{e.run_state}</Badge>}
              </td>
              <td className="num">
                {e.samples ?? "—"} / {p.prompts}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}
