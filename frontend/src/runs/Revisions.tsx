/** What a constitutional-AI run produced: the critique/revision samples of a `cai_revise` run (prompt,
 * first answer, each round's principle, critique and revision, final answer), filtered by principle;
 * and the counts of an `ai_feedback` run with a link to the project's AI audit. */
import { useState } from "react";
import { aiFeedbackCounts, pageRange, principleKeysOf } from "../admin/constitution";
import { REVIEW_PAGE, runRevisions, type RevisionSample } from "../api";
import { Link } from "../router";
import { ErrorNote } from "../ui/components";
import { useDebounced, useLoad } from "../ui/hooks";
import { isTerminal, type Run } from "./runEvents";

/** The revisions section of a cai_revise run. Loads once the run has finished (stored rows are final
 * then), or on request while it runs. */
export function Revisions({ run }: { run: Run }) {
  const finished = isTerminal(run.state);
  const [early, setEarly] = useState(false);
  const keys = principleKeysOf(run.outputs);
  const [principle, setPrinciple] = useState("");
  const settled = useDebounced(principle, keys.length ? 0 : 400);
  const [offset, setOffset] = useState(0);
  const enabled = finished || early;
  const page = useLoad(
    () => (enabled ? runRevisions(run.id, { principle: settled, offset }) : Promise.resolve(null)),
    `${run.id}:${enabled}:${run.state}:${settled}:${offset}`,
  );
  const items = page.data?.results ?? [];
  const count = page.data?.count ?? 0;
  const choose = (value: string) => {
    setPrinciple(value);
    setOffset(0);
  };

  return (
    <section className="card revisions" aria-label="Revisions">
      <div className="editor-head">
        <h2>Revisions</h2>
        {page.data && <span className="muted small">{pageRange(offset, items.length, count)}</span>}
      </div>
      <p className="muted small">Each sample: the prompt, the model's first answer, then per round the principle, its critique and the revision.</p>
      {!enabled ? (
        <p role="status">
          The samples are listed once the run has finished.{" "}
          <button type="button" className="link" onClick={() => setEarly(true)}>
            Show the samples stored so far
          </button>
        </p>
      ) : (
        <>
          <div className="controls-inline">
            {keys.length > 0 ? (
              <label>
                Principle{" "}
                <select value={principle} onChange={(e) => choose(e.target.value)}>
                  <option value="">every principle</option>
                  {keys.map(({ key, count }) => (
                    <option key={key} value={key}>
                      {key}
                      {count !== null ? ` (${count})` : ""}
                    </option>
                  ))}
                </select>
              </label>
            ) : (
              <label>
                Principle key{" "}
                <input value={principle} onChange={(e) => choose(e.target.value)} placeholder="e.g. harm" spellCheck={false} />
              </label>
            )}
            {!finished && (
              <button type="button" className="secondary" onClick={() => void page.reload()} disabled={page.loading}>
                Refresh
              </button>
            )}
          </div>
          <ErrorNote error={page.error} />
          {page.loading && !page.data && <p role="status">Loading samples…</p>}
          {page.data && count === 0 && <p role="status">No samples{settled.trim() ? ` used the principle “${settled.trim()}”` : " stored"}.</p>}
          <div className="revision-list">
            {items.map((sample, i) => (
              <Sample key={sample.id ?? `${offset + i}`} sample={sample} number={offset + i + 1} />
            ))}
          </div>
          {count > REVIEW_PAGE && (
            <div className="actions">
              <button className="secondary" disabled={offset === 0 || page.loading} onClick={() => setOffset((o) => Math.max(0, o - REVIEW_PAGE))}>
                Previous
              </button>
              <button className="secondary" disabled={offset + REVIEW_PAGE >= count || page.loading} onClick={() => setOffset((o) => o + REVIEW_PAGE)}>
                Next
              </button>
            </div>
          )}
        </>
      )}
    </section>
  );
}

function snippet(text: string, length = 110): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}

function Sample({ sample, number }: { sample: RevisionSample; number: number }) {
  const principles = [...new Set(sample.rounds.map((r) => r.principle))];
  return (
    <details className="revision-sample" data-prompt-id={sample.prompt_id ?? undefined}>
      <summary>
        <b>#{number}</b> {snippet(sample.prompt)}{" "}
        <span className="muted small">
          · {sample.rounds.length} {sample.rounds.length === 1 ? "round" : "rounds"}
          {principles.length > 0 && ` (${principles.join(", ")})`}
        </span>
      </summary>
      <div className="revision-body">
        <h4 className="sub">
          Prompt{sample.prompt_id !== null && sample.prompt_id !== undefined && <span className="as-is"> (id {sample.prompt_id})</span>}
        </h4>
        <pre className="prompt review-text" tabIndex={0}>
          {sample.prompt}
        </pre>
        <h4 className="sub">Initial answer</h4>
        <pre className="prompt review-text" tabIndex={0}>
          {sample.initial}
        </pre>
        <ol className="revision-rounds">
          {sample.rounds.map((round, i) => (
            <li key={i}>
              <h4 className="sub">
                Round {i + 1}: <code>{round.principle}</code>
              </h4>
              <p className="muted small request">
                <b>Critique request:</b> {round.critique_request}
              </p>
              <pre className="prompt review-text" tabIndex={0} aria-label={`Critique, round ${i + 1}`}>
                {round.critique}
              </pre>
              <p className="muted small request">
                <b>Revision request:</b> {round.revision_request}
              </p>
              <pre className="prompt review-text" tabIndex={0} aria-label={`Revision, round ${i + 1}`}>
                {round.revision}
              </pre>
            </li>
          ))}
        </ol>
        <h4 className="sub">Final answer</h4>
        <pre className="prompt review-text final" tabIndex={0}>
          {sample.final}
        </pre>
      </div>
    </details>
  );
}

/** The counts an ai_feedback run reports, and where to audit its labels. */
export function AiFeedbackSummary({ run }: { run: Run }) {
  const counts = aiFeedbackCounts(run.outputs);
  const audit = run.project ? `/projects/${run.project}/admin/audit` : null;
  if (counts.length === 0 && !audit) return null;
  return (
    <section className="card" aria-label="AI feedback">
      <h2>AI feedback</h2>
      {counts.length > 0 ? (
        <dl className="run-facts">
          {counts.map((c) => (
            <div key={c.key}>
              <dt>{c.label}</dt>
              <dd data-testid={`ai-feedback-${c.key}`}>{c.value.toLocaleString()}</dd>
            </div>
          ))}
        </dl>
      ) : (
        <p className="muted">{isTerminal(run.state) ? "This run reported no label counts." : "The label counts appear when the run has recorded its labels."}</p>
      )}
      {audit && (
        <p className="small">
          <Link href={audit}>Audit the AI labels against people</Link>
        </p>
      )}
    </section>
  );
}
