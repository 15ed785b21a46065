/** "Import Label Studio or Argilla work": POST /api/projects/{id}/imports/ (README, "Importing Label
 * Studio and Argilla work"). The body and the answer's wording come from ./externalImport. */
import { useRef, useState, type FormEvent, type ReactNode } from "react";
import { upload } from "../api";
import { Field, ProgressBar } from "../ui/components";
import {
  ADVANCED_FIELDS,
  EXTERNAL_ACCEPT,
  EXTERNAL_FORMATS,
  externalImportForm,
  importSummary,
  placeImportErrors,
  type AdvancedField,
  type AdvancedValues,
  type ExternalFormat,
  type ExternalImportResult,
  type ImportProblem,
  type PlacedErrors,
} from "./externalImport";

const TITLE = "Import Label Studio or Argilla work";
const SHOWN = ["file", "format", ...ADVANCED_FIELDS];
const NO_ERRORS: PlacedErrors = { fields: {}, top: null, problems: [] };

export function ExternalImportForm({ projectId, k }: { projectId: number; k: number }) {
  const fileInput = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [format, setFormat] = useState<ExternalFormat>("label_studio");
  const [createMembers, setCreateMembers] = useState(false);
  const [skipBadItems, setSkipBadItems] = useState(false);
  const [advanced, setAdvanced] = useState<AdvancedValues>({});
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [errors, setErrors] = useState<PlacedErrors>(NO_ERRORS);
  const [result, setResult] = useState<ExternalImportResult | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    const form = externalImportForm(file, file.name, { format, createMembers, skipBadItems, advanced });
    setProgress(0);
    setErrors(NO_ERRORS);
    setResult(null);
    try {
      setResult(await upload<ExternalImportResult>(`projects/${projectId}/imports/`, form, setProgress));
      setFile(null);
      if (fileInput.current) fileInput.current.value = "";
    } catch (error) {
      const placed = placeImportErrors(error, SHOWN);
      setErrors(placed);
      if (ADVANCED_FIELDS.some((name) => placed.fields[name])) setAdvancedOpen(true);
    } finally {
      setProgress(null);
    }
  };

  return (
    <form className="card form" onSubmit={submit} aria-label={TITLE}>
      <h2>{TITLE}</h2>
      <p className="muted">
        Rankings people made elsewhere become comparisons ranked by the annotators the export names. Every item needs this project's K = {k} completions.
        Importing the same tasks or records again adds nothing.
      </p>
      <div className="row">
        <Field label="Format" error={errors.fields.format}>
          <select value={format} onChange={(e) => setFormat(e.target.value as ExternalFormat)}>
            {EXTERNAL_FORMATS.map((f) => (
              <option key={f.value} value={f.value}>
                {f.label}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Export file" error={errors.fields.file} hint=".json, .jsonl, or a .zip / .tar.gz of a saved dataset folder">
          <input ref={fileInput} type="file" accept={EXTERNAL_ACCEPT} onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </Field>
      </div>
      <Check label="Create members for annotators who are not members" checked={createMembers} onChange={setCreateMembers}>
        They become <strong>labelers</strong> of this project (existing members keep their role). An annotator with no account here gets a new one with no usable
        password: nobody can sign in as it until a platform admin sets one. Unchecked, such an import is refused and names them.
      </Check>
      <Check label="Skip bad items" checked={skipBadItems} onChange={setSkipBadItems}>
        Import the rest and list the bad tasks or records. Unchecked, one bad item imports nothing.
      </Check>
      <details className="advanced" open={advancedOpen} onToggle={(e) => setAdvancedOpen(e.currentTarget.open)}>
        <summary>Advanced</summary>
        <AdvancedFields values={advanced} errors={errors.fields} onChange={(name, value) => setAdvanced((v) => ({ ...v, [name]: value }))} />
      </details>
      {progress !== null && <ProgressBar fraction={progress} label={`${TITLE} progress`} />}
      <div className="actions">
        <button type="submit" disabled={!file || progress !== null}>
          {progress !== null ? "Importing…" : "Import"}
        </button>
      </div>
      {errors.top !== null && (
        <div className="row-errors" role="alert">
          <p className="error">
            <strong>Nothing was imported:</strong> {errors.top}
          </p>
          <ProblemTable problems={errors.problems} label="Refused" />
        </div>
      )}
      {result && <ImportResult result={result} />}
    </form>
  );
}

function Check({ label, checked, onChange, children }: { label: string; checked: boolean; onChange: (checked: boolean) => void; children: ReactNode }) {
  return (
    <div className="field">
      <label className="check">
        <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} /> {label}
      </label>
      <span className="hint">{children}</span>
    </div>
  );
}

const ADVANCED: { name: AdvancedField; label: string; hint: string; placeholder?: string }[] = [
  { name: "annotators", label: "Annotators (JSON)", hint: "Who each annotator is here: their id or email → a username or email.", placeholder: '{"10": "bob", "ann@example.org": "ann"}' },
  { name: "prompt_field", label: "Prompt field", hint: "The data field with the prompt (default: prompt, instruction, question, input or query)." },
  { name: "completion_fields", label: "Completion fields", hint: "Label Studio pairwise: the left and right data fields.", placeholder: "answer1,answer2" },
  { name: "items_field", label: "Items field", hint: "Label Studio ranker: the data field of the items." },
  { name: "bucket_order", label: "Bucket order", hint: "Label Studio ranker buckets, best first (_ is the items left unsorted).", placeholder: "relevant_results,_" },
  { name: "failed_buckets", label: "Failed buckets", hint: "Label Studio ranker buckets whose items are marked F.", placeholder: "biased_results" },
  { name: "question", label: "Question", hint: "Argilla: the RankingQuestion's name, when a record has several." },
  { name: "eval_fraction", label: "Eval fraction", hint: "Share of new comparisons put in the eval split (default 0.1).", placeholder: "0.1" },
];

function AdvancedFields({ values, errors, onChange }: { values: AdvancedValues; errors: Record<string, string>; onChange: (name: AdvancedField, value: string) => void }) {
  const [annotators, ...rest] = ADVANCED;
  return (
    <div className="stack">
      <p className="muted small">Optional; an empty field is not sent.</p>
      <Field label={annotators.label} error={errors.annotators} hint={annotators.hint}>
        <textarea rows={2} value={values.annotators ?? ""} placeholder={annotators.placeholder} onChange={(e) => onChange("annotators", e.target.value)} />
      </Field>
      <div className="grid-3">
        {rest.map(({ name, label, hint, placeholder }) => (
          <Field key={name} label={label} error={errors[name]} hint={hint}>
            <input value={values[name] ?? ""} placeholder={placeholder} onChange={(e) => onChange(name, e.target.value)} />
          </Field>
        ))}
      </div>
    </div>
  );
}

function ImportResult({ result }: { result: ExternalImportResult }) {
  const summary = importSummary(result);
  return (
    <div role="status">
      <p className="ok">{summary.headline}</p>
      <table className="table compact" aria-label="Import result">
        <tbody>
          {summary.rows.map((row) => (
            <tr key={row.label}>
              <th scope="row">{row.label}</th>
              <td>{row.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ProblemTable problems={summary.problems} label="Skipped" />
    </div>
  );
}

function ProblemTable({ problems, label }: { problems: ImportProblem[]; label: string }) {
  if (problems.length === 0) return null;
  return (
    <table className="table compact" aria-label={`${label} items`}>
      <thead>
        <tr>
          <th>{label}</th>
          <th>Field</th>
          <th>Value</th>
          <th>Problem</th>
        </tr>
      </thead>
      <tbody>
        {problems.map((p, i) => (
          <tr key={i}>
            <td>{p.where}</td>
            <td>{p.field ? <code>{p.field}</code> : "—"}</td>
            <td>{p.value !== null ? <code>{p.value}</code> : "—"}</td>
            <td>{p.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
