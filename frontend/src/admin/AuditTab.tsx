/** The AI labeler's audit: per principle, how often the AI's orders agree with human labelers' (beside
 * how often humans agree with each other on the same comparisons) and with imported labels; and the
 * comparisons where the AI and a person disagree, to read side by side. Reviewers and admins. */
import { useState } from "react";
import { aiAuditApi, REVIEW_PAGE, type AgreementRate, type AuditRow, type Disagreement } from "../api";
import { Link } from "../router";
import { ErrorNote } from "../ui/components";
import { useLoad } from "../ui/hooks";
import { formatPercent } from "../ui/scale";
import type { TabProps } from "./Console";
import { formatAgreement, letter, orderSummary, pageRange, rankPositions } from "./constitution";

/** Which disagreements are listed: every principle (null) or one key. */
type Selection = { principle: string | null } | null;

export function AuditTab({ project }: TabProps) {
  const audit = useLoad(() => aiAuditApi.get(project.id), String(project.id));
  const [selection, setSelection] = useState<Selection>(null);
  const data = audit.data;

  return (
    <div className="stack audit">
      <section className="card" aria-label="AI labeler audit">
        <div className="editor-head">
          <h2>AI labeler audit</h2>
          <button className="secondary" onClick={() => void audit.reload()} disabled={audit.loading}>
            Refresh
          </button>
        </div>
        <p className="muted small">
          Where the AI labeler and people ranked the same comparison, the share of completion pairs on which they prefer the same side
          (overall orders only). Human–human agreement on the same comparisons is the yardstick.
        </p>
        <ErrorNote error={audit.error} />
        {audit.loading && !data && <p role="status">Loading the audit…</p>}
        {data && (
          <p data-testid="spot-check-rate">
            Spot checks: <b>{formatPercent(data.spot_check_rate, 0)}</b> of newly AI-labeled comparisons stay in the human queue.{" "}
            <Link href={`/projects/${project.id}/admin/settings`}>Change it in Settings</Link>
          </p>
        )}
        {data && data.overall.ai_labels === 0 && <p role="status">No AI labels yet: run AI feedback on this project to audit it.</p>}
        {data && data.overall.ai_labels > 0 && (
          <AuditTable
            rows={[data.overall, ...data.principles]}
            selected={selection?.principle ?? (selection ? "all" : undefined)}
            onSelect={(principle) => setSelection({ principle: principle === "all" ? null : principle })}
          />
        )}
      </section>
      {selection && (
        <Disagreements
          key={selection.principle ?? "all"}
          projectId={project.id}
          principle={selection.principle}
          onClose={() => setSelection(null)}
        />
      )}
    </div>
  );
}

function Rate({ rate }: { rate: AgreementRate }) {
  const { value, pairs } = formatAgreement(rate);
  return (
    <>
      <span className="rate">{value}</span> <span className="muted small">{pairs}</span>
    </>
  );
}

function AuditTable({ rows, selected, onSelect }: { rows: AuditRow[]; selected: string | undefined; onSelect: (principle: string) => void }) {
  return (
    <table className="table audit-table" aria-label="AI audit by principle">
      <thead>
        <tr>
          <th>Principle</th>
          <th className="num">AI labels</th>
          <th className="num">Shared with humans</th>
          <th className="num">AI–human agreement</th>
          <th className="num">Human–human agreement</th>
          <th className="num">AI–imported agreement</th>
          <th className="num">Disagreements</th>
          <th>
            <span className="visually-hidden">Review</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => {
          const name = row.principle === "all" ? "All principles" : row.principle;
          return (
            <tr
              key={row.principle}
              className={`clickable${row.principle === selected ? " selected" : ""}${row.principle === "all" ? " overall" : ""}`}
              data-principle={row.principle}
              onClick={() => onSelect(row.principle)}
            >
              <td>{row.principle === "all" ? <b>{name}</b> : <code>{name}</code>}</td>
              <td className="num">{row.ai_labels.toLocaleString()}</td>
              <td className="num">
                {row.shared_with_humans.toLocaleString()}
                {row.shared_with_imported > 0 && <div className="muted small">{row.shared_with_imported.toLocaleString()} with imported</div>}
              </td>
              <td className="num">
                <Rate rate={row.ai_human_agreement} />
              </td>
              <td className="num">
                <Rate rate={row.human_human_agreement} />
              </td>
              <td className="num">
                <Rate rate={row.ai_imported_agreement} />
              </td>
              <td className="num">{row.disagreements.toLocaleString()}</td>
              <td className="right">
                <button
                  type="button"
                  className="link"
                  aria-label={`Review disagreements: ${name}`}
                  aria-pressed={row.principle === selected}
                  onClick={(event) => {
                    event.stopPropagation();
                    onSelect(row.principle);
                  }}
                >
                  Review disagreements
                </button>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Disagreements({ projectId, principle, onClose }: { projectId: number; principle: string | null; onClose: () => void }) {
  const [offset, setOffset] = useState(0);
  const page = useLoad(() => aiAuditApi.disagreements(projectId, { principle, offset }), `${projectId}:${principle}:${offset}`);
  const items = page.data?.results ?? [];
  const count = page.data?.count ?? 0;
  const title = principle ? `Disagreements: ${principle}` : "Disagreements: all principles";

  return (
    <section className="card" aria-label={title}>
      <div className="editor-head">
        <h2>{title}</h2>
        {page.data && <span className="muted small">{pageRange(offset, items.length, count)}</span>}
        <button className="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      <p className="muted small">Comparisons where a person and the AI labeler prefer opposite sides of some pair, newest first. Rank 1 is best; F marks a completion judged nonsense.</p>
      <ErrorNote error={page.error} />
      {page.loading && !page.data && <p role="status">Loading disagreements…</p>}
      {page.data && count === 0 && <p role="status">No disagreements{principle ? " for this principle" : ""}.</p>}
      <div className="disagreement-list">
        {items.map((item) => (
          <DisagreementView key={item.comparison} item={item} />
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
    </section>
  );
}

function DisagreementView({ item }: { item: Disagreement }) {
  const completions = [...item.completions].sort((a, b) => a.position - b.position);
  const details = item.ai.details ?? {};
  const rows = [
    {
      id: "ai",
      who: "AI labeler",
      order: item.ai.order,
      extra: typeof details.probability === "number" ? `p = ${details.probability.toFixed(2)}` : "",
    },
    ...item.people.map((person) => ({
      id: `${person.source}-${person.labeler}`,
      who: `${person.source === "imported" ? "Imported label" : "Human labeler"} #${person.labeler}`,
      order: person.order,
      extra: "",
    })),
  ];
  const meta = [
    `principle ${item.principle}`,
    item.split && `split ${item.split}`,
    details.constitution != null && `constitution v${details.constitution}`,
    details.run != null && `run ${details.run}`,
  ].filter(Boolean);
  return (
    <article className="disagreement" aria-label={`Comparison ${item.comparison}`} data-comparison={item.comparison}>
      <header>
        <h3>Comparison {item.comparison}</h3>
        <span className="muted small">{meta.join(" · ")}</span>
      </header>
      <h4 className="sub">Prompt</h4>
      <pre className="prompt review-text" tabIndex={0} data-testid="disagreement-prompt">
        {item.prompt}
      </pre>
      <div className="completion-grid" style={{ ["--cols" as string]: String(Math.min(completions.length, 3)) }}>
        {completions.map((c, i) => (
          <div key={c.id} className="completion">
            <h4 className="sub">
              <span className="letter">{letter(i)}</span> Completion {letter(i)}
            </h4>
            <pre className="prompt review-text" tabIndex={0}>
              {c.text}
            </pre>
          </div>
        ))}
      </div>
      <table className="table compact orders" aria-label={`Orders of comparison ${item.comparison}`}>
        <thead>
          <tr>
            <th>Who</th>
            {completions.map((c, i) => (
              <th key={c.id} className="num">
                {letter(i)}
              </th>
            ))}
            <th>Order (best first)</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => {
            const ranks = rankPositions(row.order);
            return (
              <tr key={row.id} className={row.id === "ai" ? "ai-row" : undefined}>
                <td>
                  {row.who}
                  {row.extra && <span className="muted small"> · {row.extra}</span>}
                </td>
                {completions.map((c) => (
                  <td key={c.id} className="num">
                    {ranks[String(c.id)]?.label ?? "—"}
                  </td>
                ))}
                <td>{orderSummary(row.order, completions)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {details.pairs && details.pairs.length > 0 && (
        <p className="muted small">
          AI pair probabilities:{" "}
          {details.pairs
            .map((pair) => {
              const a = completions.findIndex((c) => c.id === pair.a);
              const b = completions.findIndex((c) => c.id === pair.b);
              return `P(${a >= 0 ? letter(a) : pair.a} better than ${b >= 0 ? letter(b) : pair.b}) = ${pair.p_a.toFixed(2)}`;
            })
            .join("; ")}
        </p>
      )}
    </article>
  );
}
