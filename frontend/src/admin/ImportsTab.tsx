/** Imports of outside work: comparisons (a prompt + K completions), labelled preference pairs, and
 * rankings made in Label Studio or Argilla (ExternalImportForm). */
import { useRef, useState, type FormEvent, type ReactNode } from "react";
import { upload } from "../api";
import { Field, ProgressBar, RowErrorTable } from "../ui/components";
import { fieldErrors, rowErrors, type RowError } from "../ui/format";
import type { TabProps } from "./Console";
import { ExternalImportForm } from "./ExternalImportForm";

type ComparisonsResult = { created: number; gold: number };
type PreferencesResult = { created: number; skipped: number; skipped_rows: RowError[] };

export function ImportsTab({ project, canEdit }: TabProps) {
  if (!canEdit) return <p className="card muted">Imports are for project admins.</p>;
  return (
    <div className="stack">
      <UploadForm<ComparisonsResult>
        title="Import comparisons"
        path={`projects/${project.id}/comparisons/`}
        description={
          <>
            JSONL, one comparison a line: <code>{`{"prompt": "...", "completions": [${project.completions_per_prompt} texts], "split"?, "metadata"?, "gold"?: {"ranks": [...]}}`}</code>.
            Every line must have {project.completions_per_prompt} completions (K). A bad line imports nothing.
          </>
        }
        renderResult={(r) => `Imported ${r.created.toLocaleString()} comparisons (${r.gold} gold).`}
      />
      <UploadForm<PreferencesResult>
        title="Import preference pairs"
        path={`projects/${project.id}/preferences/`}
        description={
          <>
            JSONL of HH-RLHF pairs <code>{`{"chosen": "...", "rejected": "..."}`}</code> (full transcripts, split at the last “Assistant:” turn) or{" "}
            <code>{`{"prompt", "chosen", "rejected"}`}</code>. Each pair becomes a 2-completion comparison ranked by the “imported” member.
            {project.completions_per_prompt !== 2 && <strong> This project has K = {project.completions_per_prompt}; pairs need K = 2.</strong>}
          </>
        }
        options
        renderResult={(r) => (
          <>
            Imported {r.created.toLocaleString()} pairs{r.skipped ? `, skipped ${r.skipped}` : ""}.
            {r.skipped_rows.length > 0 && <RowErrorTable errors={r.skipped_rows} title="Skipped lines:" />}
          </>
        )}
      />
      <ExternalImportForm projectId={project.id} k={project.completions_per_prompt} />
    </div>
  );
}

function UploadForm<T>({ title, path, description, options = false, renderResult }: { title: string; path: string; description: ReactNode; options?: boolean; renderResult: (result: T) => ReactNode }) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [onError, setOnError] = useState("fail");
  const [evalFraction, setEvalFraction] = useState("0.1");
  const [progress, setProgress] = useState<number | null>(null);
  const [lines, setLines] = useState<RowError[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [result, setResult] = useState<T | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    if (options) {
      form.append("on_error", onError);
      form.append("eval_fraction", evalFraction || "0");
    }
    setProgress(0);
    setLines([]);
    setErrors({});
    setResult(null);
    try {
      setResult(await upload<T>(path, form, setProgress));
      setFile(null);
      if (fileInput.current) fileInput.current.value = "";
    } catch (error) {
      const byLine = rowErrors(error);
      setLines(byLine);
      setErrors(byLine.length ? {} : fieldErrors(error));
    } finally {
      setProgress(null);
    }
  };

  return (
    <form className="card form" onSubmit={submit} aria-label={title}>
      <h2>{title}</h2>
      <p className="muted">{description}</p>
      <div className="row">
        <Field label="JSONL file" error={errors.file}>
          <input ref={fileInput} type="file" accept=".jsonl,.ndjson,.json" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </Field>
        {options && (
          <>
            <Field label="On a bad row" error={errors.on_error}>
              <select value={onError} onChange={(e) => setOnError(e.target.value)}>
                <option value="fail">fail: import nothing</option>
                <option value="skip">skip it and count it</option>
              </select>
            </Field>
            <Field label="Eval fraction" error={errors.eval_fraction}>
              <input type="number" step="0.01" min={0} max={1} className="narrow" value={evalFraction} onChange={(e) => setEvalFraction(e.target.value)} />
            </Field>
          </>
        )}
      </div>
      {progress !== null && <ProgressBar fraction={progress} label={`${title} progress`} />}
      <div className="actions">
        <button type="submit" disabled={!file || progress !== null}>
          {progress !== null ? "Importing…" : "Import"}
        </button>
      </div>
      <RowErrorTable errors={lines} title="Nothing was imported." />
      {errors[""] && (
        <p className="error" role="alert">
          Nothing was imported: {errors[""]}
        </p>
      )}
      {result && (
        <div className="ok" role="status">
          {renderResult(result)}
        </div>
      )}
    </form>
  );
}
