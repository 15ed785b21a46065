/** Prompt templates: a list, a create form and an editor with a live preview on real dataset rows.
 *
 * The preview renders the *unsaved draft* on the server (which owns parsing, few-shot rendering and
 * the token estimate): each pause (debounced) re-renders it, and a draft the server refuses shows
 * its error next to the field. Nothing is stored until Save. */
import { useEffect, useState, type FormEvent } from "react";
import { api, type Page } from "../api";
import { Badge, ErrorNote, Field, ReadOnlyNote } from "../ui/components";
import { errorText, fieldErrors, parseExamples } from "../ui/format";
import { useDebounced, useLoad } from "../ui/hooks";
import type { TabProps } from "./Console";
import type { Dataset, Preview, PromptRow, Template } from "./types";

const DEBOUNCE_MS = 600;

export function TemplatesTab({ project, canEdit }: TabProps) {
  const templates = useLoad(() => api.get<Page<Template>>(`projects/${project.id}/templates/`, { limit: 200 }), String(project.id));
  const datasets = useLoad(() => api.get<Page<Dataset>>(`projects/${project.id}/datasets/`, { limit: 200 }), String(project.id));
  const [selected, setSelected] = useState<number | null>(null);
  const list = templates.data?.results ?? [];
  const current = list.find((t) => t.id === selected) ?? list[0] ?? null;

  return (
    <div className="templates">
      <aside className="card template-list">
        <h2>Templates</h2>
        <ErrorNote error={templates.error} />
        {templates.data && list.length === 0 && <p className="muted">No templates yet.</p>}
        <ul>
          {list.map((t) => (
            <li key={t.id}>
              <button className={t.id === current?.id ? "link active" : "link"} onClick={() => setSelected(t.id)}>
                {t.name}
              </button>{" "}
              {t.is_default && <Badge tone="good">default</Badge>}
            </li>
          ))}
        </ul>
        {canEdit && (
          <NewTemplate
            projectId={project.id}
            datasets={datasets.data?.results ?? []}
            onCreated={(t) => {
              setSelected(t.id);
              void templates.reload();
            }}
          />
        )}
      </aside>
      <div className="template-main">
        <ReadOnlyNote canEdit={canEdit} />
        {current && (
          <Editor
            key={current.id}
            projectId={project.id}
            template={current}
            datasets={datasets.data?.results ?? []}
            canEdit={canEdit}
            onSaved={() => void templates.reload()}
          />
        )}
      </div>
    </div>
  );
}

function NewTemplate({ projectId, datasets, onCreated }: { projectId: number; datasets: Dataset[]; onCreated: (t: Template) => void }) {
  const [name, setName] = useState("");
  const [text, setText] = useState("");
  const [dataset, setDataset] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const create = async (event: FormEvent) => {
    event.preventDefault();
    setErrors({});
    try {
      const created = await api.post<Template>(`projects/${projectId}/templates/`, {
        name: name.trim(),
        text,
        dataset: dataset ? Number(dataset) : null,
      });
      setName("");
      setText("");
      onCreated(created);
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  return (
    <form className="form new-template" onSubmit={create} aria-label="New template">
      <h3>New template</h3>
      <Field label="Template name" error={errors.name}>
        <input value={name} onChange={(e) => setName(e.target.value)} required />
      </Field>
      <Field label="Checked against dataset" error={errors.dataset}>
        <select value={dataset} onChange={(e) => setDataset(e.target.value)}>
          <option value="">(none)</option>
          {datasets.map((d) => (
            <option key={d.id} value={d.id}>
              {d.name}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Text" error={errors.text} hint="Fields as {field}; {{ and }} for literal braces">
        <textarea rows={4} value={text} onChange={(e) => setText(e.target.value)} required />
      </Field>
      {errors[""] && (
        <p className="error" role="alert">
          {errors[""]}
        </p>
      )}
      <button type="submit" disabled={!name.trim() || !text}>
        Create template
      </button>
    </form>
  );
}

type Draft = { name: string; text: string; example_text: string; examples: string; example_separator: string; dataset: string };

function draftOf(t: Template): Draft {
  return {
    name: t.name,
    text: t.text,
    example_text: t.example_text,
    examples: t.examples.length ? JSON.stringify(t.examples, null, 2) : "",
    example_separator: t.example_separator,
    dataset: t.dataset === null ? "" : String(t.dataset),
  };
}

/** The fields of `draft` that differ from `saved`, as the PATCH body; examples only when they parse. */
function changes(draft: Draft, saved: Template): { body: Record<string, unknown>; examplesError: string | null } {
  const body: Record<string, unknown> = {};
  if (draft.name.trim() && draft.name !== saved.name) body.name = draft.name;
  if (draft.text !== saved.text) body.text = draft.text;
  if (draft.example_text !== saved.example_text) body.example_text = draft.example_text;
  if (draft.example_separator !== saved.example_separator) body.example_separator = draft.example_separator;
  const dataset = draft.dataset ? Number(draft.dataset) : null;
  if (dataset !== saved.dataset) body.dataset = dataset;
  const parsed = parseExamples(draft.examples);
  if ("error" in parsed) return { body, examplesError: parsed.error };
  if (JSON.stringify(parsed.value) !== JSON.stringify(saved.examples)) body.examples = parsed.value;
  return { body, examplesError: null };
}

function Editor({ projectId, template, datasets, canEdit, onSaved }: { projectId: number; template: Template; datasets: Dataset[]; canEdit: boolean; onSaved: () => void }) {
  const [saved, setSaved] = useState(template);
  const [draft, setDraft] = useState<Draft>(() => draftOf(template));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [previewErrors, setPreviewErrors] = useState<Record<string, string>>({});
  const [status, setStatus] = useState<"idle" | "saving" | "error">("idle");
  const settled = useDebounced(draft, DEBOUNCE_MS);
  const pending = changes(draft, saved);
  const dirty = Object.keys(pending.body).length > 0 || pending.examplesError !== null;

  const save = async () => {
    const { body, examplesError } = changes(draft, saved);
    if (examplesError) return setErrors({ examples: examplesError });
    if (draft.name.trim() === "") return setErrors({ name: "A template needs a name." });
    if (Object.keys(body).length === 0) return;
    setStatus("saving");
    try {
      const updated = await api.patch<Template>(`projects/${projectId}/templates/${template.id}/`, body);
      setSaved(updated);
      setErrors({});
      setStatus("idle");
      onSaved();
    } catch (error) {
      setErrors(fieldErrors(error));
      setStatus("error");
    }
  };

  const set = (key: keyof Draft) => (event: { target: { value: string } }) => setDraft((d) => ({ ...d, [key]: event.target.value }));
  const makeDefault = async () => {
    try {
      setSaved(await api.patch<Template>(`projects/${projectId}/templates/${template.id}/`, { make_default: true }));
      onSaved();
    } catch (error) {
      setErrors({ "": errorText(error) });
    }
  };
  const shown = { ...previewErrors, ...errors };

  return (
    <div className="template-editor">
      <section className="card form" aria-label="Template editor">
        <div className="editor-head">
          <h2>{saved.name}</h2>
          {saved.is_default ? <Badge tone="good">project default</Badge> : canEdit && <button className="secondary" onClick={() => void makeDefault()}>Make default</button>}
          {canEdit && (
            <>
              <span className={`save-state ${status}`} role="status">
                {status === "saving" ? "Saving…" : status === "error" ? "Not saved: see the errors below" : dirty ? "Unsaved changes" : "All changes saved"}
              </span>
              <button onClick={() => void save()} disabled={!dirty || status === "saving"}>
                Save
              </button>
            </>
          )}
        </div>
        <fieldset disabled={!canEdit}>
          <div className="row">
            <Field label="Name" error={shown.name}>
              <input value={draft.name} onChange={set("name")} />
            </Field>
            <Field label="Checked against dataset" error={shown.dataset}>
              <select value={draft.dataset} onChange={set("dataset")}>
                <option value="">(none)</option>
                {datasets.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.name}
                  </option>
                ))}
              </select>
            </Field>
          </div>
          <Field label="Template text" error={shown.text} hint="Fields as {field}; {{ and }} for literal braces">
            <textarea className="mono" rows={6} value={draft.text} onChange={set("text")} />
          </Field>
          <Field label="Few-shot examples (JSON list of objects)" error={shown.examples} hint="Empty for zero-shot; each example is rendered with the example text">
            <textarea className="mono" rows={6} value={draft.examples} onChange={set("examples")} placeholder='[{"dialogue": "...", "summary": "..."}]' />
          </Field>
          <div className="row">
            <Field label="Example text" error={shown.example_text} hint="How each example renders; empty means the template text">
              <textarea className="mono" rows={5} value={draft.example_text} onChange={set("example_text")} />
            </Field>
            <Field label="Separator" error={shown.example_separator} hint="Between examples and the query; \n for a newline">
              <input
                className="mono"
                value={draft.example_separator.replace(/\n/g, "\\n")}
                onChange={(e) => setDraft((d) => ({ ...d, example_separator: e.target.value.replace(/\\n/g, "\n") }))}
              />
            </Field>
          </div>
        </fieldset>
        {errors[""] && (
          <p className="error" role="alert">
            {errors[""]}
          </p>
        )}
      </section>
      <PreviewPanel projectId={projectId} template={saved} draft={settled} datasets={datasets} stale={settled !== draft} onFieldErrors={setPreviewErrors} />
    </div>
  );
}

function PreviewPanel({
  projectId,
  template,
  draft,
  datasets,
  stale,
  onFieldErrors,
}: {
  projectId: number;
  template: Template;
  draft: Draft;
  datasets: Dataset[];
  stale: boolean;
  onFieldErrors: (errors: Record<string, string>) => void;
}) {
  const [datasetId, setDatasetId] = useState<number | null>(template.dataset ?? datasets[0]?.id ?? null);
  const [index, setIndex] = useState(0);
  const [contextWindow, setContextWindow] = useState("2048");
  const [row, setRow] = useState<PromptRow | null>(null);
  const [rowError, setRowError] = useState<unknown>(null);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const dataset = datasets.find((d) => d.id === datasetId) ?? null;
  const settledWindow = useDebounced(contextWindow, DEBOUNCE_MS);

  useEffect(() => {
    if (datasetId === null && datasets.length) setDatasetId(template.dataset ?? datasets[0].id);
  }, [datasetId, datasets, template.dataset]);

  useEffect(() => {
    if (datasetId === null) return;
    let live = true;
    api
      .get<Page<PromptRow>>(`projects/${projectId}/datasets/${datasetId}/rows/`, { offset: index, limit: 1 })
      .then((page) => {
        if (!live) return;
        setRow(page.results[0] ?? null);
        setRowError(page.results.length ? null : new Error(`Row ${index} does not exist.`));
      })
      .catch((error) => live && setRowError(error));
    return () => {
      live = false;
    };
  }, [projectId, datasetId, index]);

  useEffect(() => {
    if (!row) return;
    let live = true;
    const windowSize = Number(settledWindow) > 0 ? Number(settledWindow) : 2048;
    const examples = parseExamples(draft.examples);
    if ("error" in examples) {
      onFieldErrors({ examples: examples.error });
      return;
    }
    const body = {
      row_id: row.id,
      context_window: windowSize,
      draft: { text: draft.text, example_text: draft.example_text, examples: examples.value, example_separator: draft.example_separator },
    };
    api
      .post<Preview>(`projects/${projectId}/templates/${template.id}/preview/`, body)
      .then((answer) => {
        if (!live) return;
        setPreview(answer);
        setPreviewError(null);
        onFieldErrors({});
      })
      .catch((error) => {
        if (!live) return;
        const fields = fieldErrors(error);
        onFieldErrors(fields);
        setPreviewError(Object.keys(fields).some((key) => key !== "") ? null : error);
      });
    return () => {
      live = false;
    };
    // The settled draft (not every keystroke) re-renders; onFieldErrors is a stable state setter.
  }, [projectId, template.id, draft, row, settledWindow, onFieldErrors]);

  return (
    <section className="card preview" aria-label="Live preview">
      <h2>Live preview</h2>
      {datasets.length === 0 ? (
        <p className="muted">Upload a dataset to preview this template on real rows.</p>
      ) : (
        <>
          <div className="row">
            <Field label="Dataset">
              <select value={datasetId ?? ""} onChange={(e) => (setDatasetId(Number(e.target.value)), setIndex(0))}>
                {datasets.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.name}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Row">
              <span className="stepper">
                <button type="button" className="secondary" onClick={() => setIndex((i) => Math.max(0, i - 1))} disabled={index === 0} aria-label="Previous row">
                  ‹
                </button>
                <input
                  type="number"
                  className="narrow"
                  min={0}
                  max={dataset ? dataset.row_count - 1 : undefined}
                  value={index}
                  onChange={(e) => setIndex(Math.max(0, Number(e.target.value) || 0))}
                  aria-label="Row index"
                />
                <button type="button" className="secondary" onClick={() => setIndex((i) => i + 1)} disabled={!!dataset && index >= dataset.row_count - 1} aria-label="Next row">
                  ›
                </button>
                {dataset && <span className="muted small">of {dataset.row_count}</span>}
              </span>
            </Field>
            <Field label="Context window (tokens)">
              <input type="number" className="narrow" min={1} value={contextWindow} onChange={(e) => setContextWindow(e.target.value)} />
            </Field>
          </div>
          <ErrorNote error={rowError} />
          {row && (
            <details className="row-data">
              <summary>
                Row {row.index} ({row.split}) fields
              </summary>
              <dl>
                {Object.entries(row.data).map(([key, value]) => (
                  <div key={key}>
                    <dt>{key}</dt>
                    <dd>{String(value)}</dd>
                  </div>
                ))}
              </dl>
            </details>
          )}
          {previewError ? <ErrorNote error={previewError} /> : null}
          {preview && (
            <>
              <div className="preview-meta">
                <span data-testid="token-estimate">≈ {preview.token_estimate.toLocaleString()} tokens</span>
                <span className="muted">of a {preview.context_window.toLocaleString()}-token context window</span>
                {stale && <span className="muted">(updating…)</span>}
              </div>
              {preview.warning && (
                <p className="warning" role="alert">
                  {preview.warning}
                </p>
              )}
              <pre className="prompt" data-testid="rendered-prompt">
                {preview.prompt}
              </pre>
            </>
          )}
        </>
      )}
    </section>
  );
}
