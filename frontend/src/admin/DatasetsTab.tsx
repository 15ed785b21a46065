import { useRef, useState, type FormEvent } from "react";
import { api, upload, type Page } from "../api";
import { ErrorNote, Field, ProgressBar, ReadOnlyNote, RowErrorTable } from "../ui/components";
import { fieldErrors, formatBytes, formatWhen, rowErrors, type RowError } from "../ui/format";
import { useLoad } from "../ui/hooks";
import type { TabProps } from "./Console";
import type { Dataset, PromptRow } from "./types";

const SPLITS = ["train", "eval", "test"];

export function DatasetsTab({ project, canEdit }: TabProps) {
  const datasets = useLoad(() => api.get<Page<Dataset>>(`projects/${project.id}/datasets/`, { limit: 200, ordering: "-id" }), String(project.id));
  const [open, setOpen] = useState<number | null>(null);
  return (
    <div className="stack">
      {canEdit && <Upload projectId={project.id} onDone={() => void datasets.reload()} />}
      <section className="card">
        <h2>Datasets</h2>
        <ReadOnlyNote canEdit={canEdit} />
        <ErrorNote error={datasets.error} />
        {datasets.data?.count === 0 && <p>No datasets yet.</p>}
        {datasets.data && datasets.data.count > 0 && (
          <table className="table" aria-label="Datasets">
            <thead>
              <tr>
                <th>Name</th>
                <th>File</th>
                <th className="num">Rows</th>
                {SPLITS.map((s) => (
                  <th key={s} className="num">
                    {s}
                  </th>
                ))}
                <th>Fields</th>
                <th>Imported</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {datasets.data.results.map((d) => (
                <DatasetRow key={d.id} projectId={project.id} dataset={d} open={open === d.id} onToggle={() => setOpen(open === d.id ? null : d.id)} />
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}

function DatasetRow({ projectId, dataset, open, onToggle }: { projectId: number; dataset: Dataset; open: boolean; onToggle: () => void }) {
  return (
    <>
      <tr data-dataset={dataset.name}>
        <td>{dataset.name}</td>
        <td className="muted">{dataset.source_filename}</td>
        <td className="num" data-testid="row-count">
          {dataset.row_count.toLocaleString()}
        </td>
        {SPLITS.map((s) => (
          <td key={s} className="num">
            {(dataset.split_counts[s] ?? 0).toLocaleString()}
          </td>
        ))}
        <td>
          {dataset.fields.map((f) => (
            <code key={f} className="chip">
              {f}
            </code>
          ))}
        </td>
        <td>{formatWhen(dataset.created_at)}</td>
        <td className="right">
          <button className="link" onClick={onToggle} aria-expanded={open}>
            {open ? "Hide rows" : "Rows"}
          </button>
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={9}>
            <RowsPreview projectId={projectId} dataset={dataset} />
          </td>
        </tr>
      )}
    </>
  );
}

function RowsPreview({ projectId, dataset }: { projectId: number; dataset: Dataset }) {
  const rows = useLoad(() => api.get<Page<PromptRow>>(`projects/${projectId}/datasets/${dataset.id}/rows/`, { limit: 5 }), String(dataset.id));
  if (rows.error) return <ErrorNote error={rows.error} />;
  if (!rows.data) return <p className="muted">Loading rows…</p>;
  return (
    <div className="rows-preview">
      <p className="muted">
        First {rows.data.results.length} of {rows.data.count.toLocaleString()} rows
      </p>
      <table className="table compact">
        <thead>
          <tr>
            <th>#</th>
            <th>split</th>
            {dataset.fields.map((f) => (
              <th key={f}>{f}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.data.results.map((row) => (
            <tr key={row.id}>
              <td>{row.index}</td>
              <td>{row.split}</td>
              {dataset.fields.map((f) => (
                <td key={f} className="clip">
                  {String(row.data[f] ?? "")}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Upload({ projectId, onDone }: { projectId: number; onDone: () => void }) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [evalFraction, setEvalFraction] = useState("0.1");
  const [testFraction, setTestFraction] = useState("0");
  const [progress, setProgress] = useState<number | null>(null);
  const [lines, setLines] = useState<RowError[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [result, setResult] = useState<Dataset | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    form.append("name", name);
    form.append("eval_fraction", evalFraction || "0");
    form.append("test_fraction", testFraction || "0");
    setProgress(0);
    setLines([]);
    setErrors({});
    setResult(null);
    try {
      const dataset = await upload<Dataset>(`projects/${projectId}/datasets/`, form, setProgress);
      setResult(dataset);
      setFile(null);
      setName("");
      if (fileInput.current) fileInput.current.value = "";
      onDone();
    } catch (error) {
      const byLine = rowErrors(error);
      setLines(byLine);
      setErrors(byLine.length ? {} : fieldErrors(error));
    } finally {
      setProgress(null);
    }
  };

  return (
    <form className="card form" onSubmit={submit} aria-label="Upload a dataset">
      <h2>Upload a dataset</h2>
      <p className="muted">
        JSONL (one object per line) or CSV with a header. The first row's fields are the dataset's fields; an optional <code>split</code> column
        (train/eval/test) fixes a row's split. A bad line imports nothing.
      </p>
      <div className="row">
        <Field label="File" error={errors.file}>
          <input ref={fileInput} type="file" accept=".jsonl,.ndjson,.json,.csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </Field>
        <Field label="Name" error={errors.name} hint="Defaults to the file name">
          <input value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field label="Eval fraction" error={errors.eval_fraction}>
          <input type="number" step="0.01" min={0} max={1} className="narrow" value={evalFraction} onChange={(e) => setEvalFraction(e.target.value)} />
        </Field>
        <Field label="Test fraction" error={errors.test_fraction}>
          <input type="number" step="0.01" min={0} max={1} className="narrow" value={testFraction} onChange={(e) => setTestFraction(e.target.value)} />
        </Field>
      </div>
      {file && <p className="muted">{`${file.name}, ${formatBytes(file.size)}`}</p>}
      {progress !== null && <ProgressBar fraction={progress} label="Upload progress" />}
      <div className="actions">
        <button type="submit" disabled={!file || progress !== null}>
          {progress !== null ? (progress < 1 ? "Uploading…" : "Importing…") : "Upload"}
        </button>
      </div>
      <RowErrorTable errors={lines} title="Nothing was imported." />
      {errors[""] && (
        <p className="error" role="alert">
          Nothing was imported: {errors[""]}
        </p>
      )}
      {result && (
        <p className="ok" role="status">
          Imported {result.row_count.toLocaleString()} rows into “{result.name}” ({SPLITS.map((s) => `${result.split_counts[s] ?? 0} ${s}`).join(", ")}).
        </p>
      )}
    </form>
  );
}
