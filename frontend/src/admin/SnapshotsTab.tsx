/** Preference snapshots: create one with its options, watch it build, download its files per split. */
import { useEffect, useState, type FormEvent } from "react";
import { api, type Criterion, type Page } from "../api";
import type { TabProps } from "./Console";
import { Badge, ErrorNote, Field } from "../ui/components";
import { fieldErrors, formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import type { Snapshot } from "./types";

const SOURCES = ["human", "ai", "imported"];
const POLL_MS = 1500;

export function SnapshotsTab({ project }: TabProps) {
  const snapshots = useLoad(() => api.get<Page<Snapshot>>(`projects/${project.id}/snapshots/`, { limit: 50 }), String(project.id));
  const criteria = useLoad(() => api.get<Criterion[]>(`projects/${project.id}/criteria/`), String(project.id));
  const busy = snapshots.data?.results.some((s) => s.status === "pending" || s.status === "building") ?? false;

  // Poll while a build is pending or running.
  useEffect(() => {
    if (!busy) return;
    const timer = setInterval(() => void snapshots.reload(), POLL_MS);
    return () => clearInterval(timer);
  }, [busy, snapshots.reload]);

  return (
    <div className="stack">
      <CreateSnapshot projectId={project.id} criteria={criteria.data ?? []} onCreated={() => void snapshots.reload()} />
      <section className="card">
        <h2>Snapshots</h2>
        <ErrorNote error={snapshots.error} />
        {snapshots.data?.count === 0 && <p>No snapshots yet.</p>}
        <div className="snapshot-list">
          {snapshots.data?.results.map((s) => (
            <SnapshotCard key={s.id} snapshot={s} criteria={criteria.data ?? []} />
          ))}
        </div>
      </section>
    </div>
  );
}

function statusTone(status: Snapshot["status"]) {
  return status === "ready" ? "good" : status === "failed" ? "bad" : "busy";
}

function describeOptions(options: Record<string, unknown>, criteria: Criterion[]): string {
  const parts = [String(options.mode ?? "per_labeler")];
  const criterion = options.criterion;
  if (criterion === "overall") parts.push("overall orders");
  else if (typeof criterion === "number") parts.push(criteria.find((c) => c.id === criterion)?.name ?? `criterion ${criterion}`);
  else parts.push("every criterion");
  if (Array.isArray(options.sources)) parts.push(`sources: ${options.sources.join(", ")}`);
  if (options.min_agreement) parts.push(`min agreement ${options.min_agreement}`);
  if (options.min_gold_accuracy !== null && options.min_gold_accuracy !== undefined) parts.push(`min gold accuracy ${options.min_gold_accuracy}`);
  if (options.mode === "consensus") parts.push(`threshold ${options.consensus_threshold}`);
  if (options.include_gold) parts.push("gold included");
  return parts.join(" · ");
}

const COUNT_LABELS: Record<string, string> = {
  comparisons: "comparisons",
  labelers: "labelers",
  rankings_used: "rankings used",
  tied_pairs: "tied pairs (no pair)",
  dropped_min_agreement: "dropped: below min agreement",
  dropped_below_threshold: "dropped: below threshold",
  dropped_vote_tie: "dropped: vote tie",
  rankings_skipped_gold_accuracy: "rankings dropped: labeler gold accuracy",
  rankings_skipped_source: "rankings of other sources",
  gold_comparisons_skipped: "gold comparisons left out",
  labelers_excluded_gold_accuracy: "labelers excluded (gold accuracy)",
};

function SnapshotCard({ snapshot, criteria }: { snapshot: Snapshot; criteria: Criterion[] }) {
  const counts = snapshot.counts ?? {};
  const bySplit = counts.by_split ?? {};
  return (
    <article className="snapshot" aria-label={`Snapshot v${snapshot.version}`} data-status={snapshot.status}>
      <header>
        <h3>v{snapshot.version}</h3>
        <Badge tone={statusTone(snapshot.status)}>{snapshot.status}</Badge>
        <span className="muted">
          {formatWhen(snapshot.created_at)}
          {snapshot.finished_at ? `, finished ${formatWhen(snapshot.finished_at)}` : ""}
        </span>
      </header>
      <p className="muted small">{describeOptions(snapshot.options, criteria)}</p>
      {(snapshot.status === "pending" || snapshot.status === "building") && <p className="muted">Building… (this page refreshes by itself)</p>}
      {snapshot.status === "failed" && (
        <p className="error" role="alert">
          {snapshot.error}
        </p>
      )}
      {snapshot.status === "ready" && (
        <>
          <p>
            <strong data-testid="snapshot-pairs">{(counts.pairs ?? 0).toLocaleString()} pairs</strong>
            {" — "}
            {Object.entries(bySplit)
              .map(([split, n]) => `${n.toLocaleString()} ${split}`)
              .join(", ")}
          </p>
          <ul className="counts">
            {Object.entries(COUNT_LABELS)
              .filter(([key]) => typeof counts[key] === "number" && (counts[key] as number) > 0)
              .map(([key, label]) => (
                <li key={key}>
                  {label}: {(counts[key] as number).toLocaleString()}
                </li>
              ))}
          </ul>
          {Object.keys(snapshot.downloads).length === 0 ? (
            <p className="muted">No pairs, so no files.</p>
          ) : (
            <table className="table compact downloads" aria-label={`Downloads of v${snapshot.version}`}>
              <tbody>
                {Object.entries(snapshot.downloads).map(([split, formats]) => (
                  <tr key={split}>
                    <th>{split}</th>
                    <td className="num">{(bySplit[split] ?? 0).toLocaleString()} pairs</td>
                    {Object.entries(formats).map(([format, url]) => (
                      <td key={format}>
                        <a href={url} download>
                          {split}.{format}
                        </a>
                      </td>
                    ))}
                  </tr>
                ))}
                {snapshot.hf_download && (
                  <tr>
                    <th>all splits</th>
                    <td className="num">{(counts.pairs ?? 0).toLocaleString()} pairs</td>
                    <td colSpan={2}>
                      <a href={snapshot.hf_download} download title="A Hugging Face DatasetDict folder: extract it, then datasets.load_from_disk">
                        HF dataset (.tar)
                      </a>
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          )}
        </>
      )}
    </article>
  );
}

function CreateSnapshot({ projectId, criteria, onCreated }: { projectId: number; criteria: Criterion[]; onCreated: () => void }) {
  const [mode, setMode] = useState("per_labeler");
  const [criterion, setCriterion] = useState("");
  const [minAgreement, setMinAgreement] = useState("0");
  const [minGold, setMinGold] = useState("");
  const [sources, setSources] = useState<string[]>([...SOURCES]);
  const [threshold, setThreshold] = useState("0.5");
  const [includeGold, setIncludeGold] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [sending, setSending] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSending(true);
    setErrors({});
    const body: Record<string, unknown> = {
      mode,
      criterion: criterion === "" ? null : criterion === "overall" ? "overall" : Number(criterion),
      min_agreement: Number(minAgreement || 0),
      min_gold_accuracy: minGold.trim() === "" ? null : Number(minGold),
      sources,
      include_gold: includeGold,
    };
    if (mode === "consensus") body.consensus_threshold = Number(threshold || 0);
    try {
      await api.post(`projects/${projectId}/snapshots/`, body);
      onCreated();
    } catch (error) {
      setErrors(fieldErrors(error));
    } finally {
      setSending(false);
    }
  };

  return (
    <form className="card form" onSubmit={submit} aria-label="Create a snapshot">
      <h2>Create a preference snapshot</h2>
      <p className="muted">An immutable, versioned export of pairs (prompt, chosen, rejected, margin) for training, built in the background.</p>
      <div className="row">
        <Field label="Mode" error={errors.mode}>
          <select value={mode} onChange={(e) => setMode(e.target.value)}>
            <option value="per_labeler">per labeler (every pair, tagged)</option>
            <option value="consensus">consensus (majority vote per pair)</option>
          </select>
        </Field>
        <Field label="Criterion" error={errors.criterion}>
          <select value={criterion} onChange={(e) => setCriterion(e.target.value)}>
            <option value="">every criterion</option>
            <option value="overall">overall orders only</option>
            {criteria.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Min agreement" error={errors.min_agreement} hint="0 to 1">
          <input type="number" step="0.05" min={0} max={1} className="narrow" value={minAgreement} onChange={(e) => setMinAgreement(e.target.value)} />
        </Field>
        <Field label="Min gold accuracy" error={errors.min_gold_accuracy} hint="Empty: no filter">
          <input type="number" step="0.05" min={0} max={1} className="narrow" value={minGold} onChange={(e) => setMinGold(e.target.value)} />
        </Field>
        {mode === "consensus" && (
          <Field label="Consensus threshold" error={errors.consensus_threshold} hint="Winner's share of votes">
            <input type="number" step="0.05" min={0} max={1} className="narrow" value={threshold} onChange={(e) => setThreshold(e.target.value)} />
          </Field>
        )}
      </div>
      <div className="row">
        <fieldset className="plain">
          <legend className="field-label">Label sources</legend>
          {SOURCES.map((s) => (
            <label key={s} className="check">
              <input type="checkbox" checked={sources.includes(s)} onChange={() => setSources((cur) => (cur.includes(s) ? cur.filter((x) => x !== s) : SOURCES.filter((x) => x === s || cur.includes(x))))} /> {s}
            </label>
          ))}
          {errors.sources && <span className="field-error">{errors.sources}</span>}
        </fieldset>
        <fieldset className="plain">
          <legend className="field-label">Gold</legend>
          <label className="check">
            <input type="checkbox" checked={includeGold} onChange={(e) => setIncludeGold(e.target.checked)} /> export gold comparisons too
          </label>
        </fieldset>
      </div>
      {errors[""] && (
        <p className="error" role="alert">
          {errors[""]}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={sending || sources.length === 0}>
          Create snapshot
        </button>
      </div>
    </form>
  );
}
