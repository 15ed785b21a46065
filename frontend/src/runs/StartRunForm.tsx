/**
 * Start a training run (POST /api/runs/) from a project's Runs tab: pick a kind, fill the inputs it
 * lists (registry versions, a snapshot, a dataset, templates, the constitution, ...) with pickers, and
 * change the config fields you need (each shows its default; untouched ones are not sent). A 400 puts
 * each error next to its field; a 202 opens the new run's page. An optional "Round" makes the run join
 * one of the project's rounds of the loop (`round`, sent only when chosen). The rules live in startRun.ts.
 */
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { api, constitutionApi, registryVersions, runsApi, type Page, type RunConfigField, type RunKindSpec } from "../api";
import type { Dataset, Snapshot, Template } from "../admin/types";
import { navigate } from "../router";
import { RoundField } from "../rounds/RoundField";
import { ErrorNote, Field } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import type { Run } from "./runEvents";
import {
  ALTERNATIVES,
  buildRunRequest,
  configControl,
  defaultText,
  fieldName,
  inputSpec,
  isOptional,
  mapRunErrors,
  splitConfig,
  SUGGESTIONS,
  versionChoices,
  type InputValue,
} from "./startRun";

const SPLITS = ["train", "eval", "test"];
const VERSION_INPUTS = ["base_version", "reward_version", "kl_base_version"];

/** What the pickers offer, loaded only for the inputs the chosen kind takes. */
function usePickerSources(projectId: number, spec: RunKindSpec | null) {
  const needs = (...names: string[]) => !!spec && names.some((n) => spec.inputs.includes(n));
  const needRegistry = needs(...VERSION_INPUTS);
  const needSnapshots = needs("snapshot");
  const needDatasets = needs("dataset");
  const needTemplates = needs("template", "templates");
  const needConstitutions = needs("constitution");
  const needCaiRuns = needs("cai_run");
  const registry = useLoad(async () => (needRegistry ? registryVersions() : []), `registry:${needRegistry}`);
  const snapshots = useLoad(
    async () => (needSnapshots ? (await api.get<Page<Snapshot>>(`projects/${projectId}/snapshots/`, { status: "ready", limit: 100 })).results : []),
    `snapshots:${projectId}:${needSnapshots}`,
  );
  const datasets = useLoad(
    async () => (needDatasets ? (await api.get<Page<Dataset>>(`projects/${projectId}/datasets/`, { limit: 200 })).results : []),
    `datasets:${projectId}:${needDatasets}`,
  );
  const templates = useLoad(
    async () => (needTemplates ? (await api.get<Page<Template>>(`projects/${projectId}/templates/`, { limit: 200 })).results : []),
    `templates:${projectId}:${needTemplates}`,
  );
  const constitutions = useLoad(
    async () => (needConstitutions ? (await constitutionApi.list(projectId)).results : []),
    `constitutions:${projectId}:${needConstitutions}`,
  );
  const caiRuns = useLoad(
    async () =>
      needCaiRuns ? (await api.get<Page<Run>>("runs/", { project: projectId, kind: "cai_revise", state: "succeeded", limit: 100 })).results : [],
    `cai-runs:${projectId}:${needCaiRuns}`,
  );
  const error = registry.error ?? snapshots.error ?? datasets.error ?? templates.error ?? constitutions.error ?? caiRuns.error;
  return {
    registry: registry.data ?? [],
    snapshots: snapshots.data ?? [],
    datasets: datasets.data ?? [],
    templates: templates.data ?? [],
    constitutions: constitutions.data ?? [],
    caiRuns: caiRuns.data ?? [],
    error,
  };
}

type Sources = ReturnType<typeof usePickerSources>;

export function StartRunForm({ projectId, onCancel }: { projectId: number; onCancel: () => void }) {
  const kinds = useLoad(() => runsApi.kinds(), "run-kinds");
  const [kind, setKind] = useState("");
  const spec = kinds.data?.find((k) => k.kind === kind) ?? null;
  const [inputs, setInputs] = useState<Record<string, InputValue>>({});
  const [config, setConfig] = useState<Record<string, string | boolean>>({});
  const [round, setRound] = useState("");
  const [showAdvanced, setShowAdvanced] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [sending, setSending] = useState(false);
  const [focusError, setFocusError] = useState(0);
  const formRef = useRef<HTMLFormElement>(null);
  const sources = usePickerSources(projectId, spec);
  const { common, advanced } = spec ? splitConfig(spec) : { common: [], advanced: [] };

  // After a refused submit, move focus to the first field with an error.
  useEffect(() => {
    if (focusError) formRef.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus();
  }, [focusError]);

  const clearError = (key: string) =>
    setErrors((current) => {
      if (!(key in current)) return current;
      const { [key]: _dropped, ...rest } = current;
      return rest;
    });
  const setInput = (name: string, value: InputValue) => {
    setInputs((current) => ({ ...current, [name]: value }));
    clearError(`inputs.${name}`);
  };
  const chooseRound = (value: string) => {
    setRound(value);
    clearError("round");
  };
  const setConfigValue = (name: string, value: string | boolean) => {
    setConfig((current) => ({ ...current, [name]: value }));
    clearError(`config.${name}`);
  };

  const showErrors = (next: Record<string, string>) => {
    setErrors(next);
    if (advanced.some((f) => `config.${f.name}` in next)) setShowAdvanced(true);
    setFocusError((n) => n + 1);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!spec) {
      showErrors({ kind: "Choose the kind of run to start." });
      return;
    }
    const built = buildRunRequest(spec, projectId, { inputs, config, round });
    if (built.errors) {
      showErrors(built.errors);
      return;
    }
    setSending(true);
    setErrors({});
    try {
      const run = await runsApi.start(built.body);
      navigate(`/projects/${projectId}/admin/runs/${run.id}`);
    } catch (error) {
      setSending(false);
      showErrors(mapRunErrors(error, spec));
    }
  };

  const fieldErrorKeys = Object.keys(errors).filter((k) => k !== "");
  const general =
    errors[""] ?? (fieldErrorKeys.length ? `Not started: see ${fieldErrorKeys.length === 1 ? "the error at" : "the errors at"} ${fieldErrorKeys.map(fieldName).join(", ")}.` : "");
  const changedAdvanced = advanced.filter((f) => config[f.name] !== undefined && config[f.name] !== "" && config[f.name] !== f.default).length;

  return (
    <form ref={formRef} className="card form start-run" onSubmit={submit} aria-label="Start a run" noValidate>
      <div className="editor-head">
        <h2>Start a run</h2>
      </div>
      <p className="muted small">
        The run is queued for a worker; its page follows it. Inputs are named by id and checked by the server; config fields left empty keep their
        defaults.
      </p>
      <ErrorNote error={kinds.error} />
      {kinds.loading && !kinds.data && <p role="status">Loading the run kinds…</p>}
      {kinds.data && (
        <div className="row kind-row">
          <Field label="Kind" error={errors.kind} hint={spec?.description || "What the run does."}>
            <select
              value={kind}
              onChange={(e) => {
                setKind(e.target.value);
                setConfig({});
                setErrors({});
                setShowAdvanced(false);
              }}
            >
              <option value="">Choose a kind…</option>
              {kinds.data.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.kind}
                </option>
              ))}
            </select>
          </Field>
          <RoundField projectId={projectId} value={round} onChange={chooseRound} error={errors.round} hint="Optional: the round of the loop this run belongs to; it counts in that round’s figures." />
        </div>
      )}
      {spec && (
        <>
          <fieldset className="run-inputs">
            <legend className="field-label">Inputs</legend>
            {ALTERNATIVES[spec.kind] && (
              <p className="alternatives small" data-testid="input-alternatives">
                {ALTERNATIVES[spec.kind]}
              </p>
            )}
            <ErrorNote error={sources.error} />
            <div className="grid-3">
              {spec.inputs.map((name) => (
                <InputField
                  key={name}
                  kind={spec.kind}
                  hints={spec.hints}
                  name={name}
                  value={inputs[name]}
                  onChange={(value) => setInput(name, value)}
                  error={errors[`inputs.${name}`]}
                  sources={sources}
                  datasetId={inputs.dataset}
                />
              ))}
            </div>
          </fieldset>
          <fieldset className="run-config">
            <legend className="field-label">Config</legend>
            {common.length > 0 ? (
              <ConfigTable fields={common} values={config} errors={errors} onChange={setConfigValue} label="Config" />
            ) : (
              <p className="muted small">No common fields for this kind; see Advanced.</p>
            )}
            {advanced.length > 0 && (
              <>
                <p className="advanced-toggle">
                  <button type="button" className="link" aria-expanded={showAdvanced} onClick={() => setShowAdvanced((open) => !open)}>
                    {showAdvanced ? "▾" : "▸"} Advanced: {advanced.length} more fields{changedAdvanced ? ` (${changedAdvanced} changed)` : ""}
                  </button>
                </p>
                {showAdvanced && <ConfigTable fields={advanced} values={config} errors={errors} onChange={setConfigValue} label="Advanced config" />}
              </>
            )}
          </fieldset>
        </>
      )}
      {general && (
        <p className="error" role="alert" data-testid="start-run-error">
          {general}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={sending || !kinds.data}>
          {sending ? "Starting…" : "Start run"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function InputField({
  kind,
  hints,
  name,
  value,
  onChange,
  error,
  sources,
  datasetId,
}: {
  kind: string;
  hints: Record<string, string>;
  name: string;
  value: InputValue | undefined;
  onChange: (value: InputValue) => void;
  error?: string;
  sources: Sources;
  datasetId: InputValue | undefined;
}) {
  const spec = inputSpec({ hints }, name);
  const text = typeof value === "string" ? value : "";
  const listId = useId();
  const groupId = useId();
  const label = spec.label;
  const hint = (
    <>
      <code>{name}</code> · {spec.hint}
    </>
  );
  const select = (placeholder: string, options: { value: string | number; label: string }[], emptyNote?: string) => (
    <Field label={label} error={error} hint={options.length === 0 && emptyNote ? <>{hint} {emptyNote}</> : hint}>
      <select value={text} onChange={(e) => onChange(e.target.value)}>
        <option value="">{placeholder}</option>
        {options.map((o) => (
          <option key={o.value} value={String(o.value)}>
            {o.label}
          </option>
        ))}
      </select>
    </Field>
  );

  switch (spec.control) {
    case "version": {
      const choices = versionChoices(sources.registry, kind, name);
      return select(
        name === "base_version" ? "Choose a version…" : "None",
        choices.map((c) => ({ value: c.id, label: c.label })),
        "No registered version fits yet.",
      );
    }
    case "snapshot":
      return select(
        "None",
        sources.snapshots.map((s) => ({ value: s.id, label: `v${s.version} · ${(s.counts.pairs ?? 0).toLocaleString()} pairs` })),
        "No ready snapshot: create one in Snapshots.",
      );
    case "dataset":
      return select(
        "None",
        sources.datasets.map((d) => ({ value: d.id, label: `${d.name} (${d.row_count.toLocaleString()} rows)` })),
        "This project has no dataset.",
      );
    case "template":
      return select("Project default", sources.templates.map((t) => ({ value: t.id, label: `${t.name}${t.is_default ? " (default)" : ""}` })));
    case "constitution": {
      const newest = sources.constitutions[0];
      return select(
        newest ? `Newest (v${newest.version})` : "Newest",
        sources.constitutions.map((c) => ({ value: c.version, label: `v${c.version}${c.note ? ` · ${c.note.slice(0, 40)}` : ""}` })),
        "This project has no constitution yet: save one in the Constitution tab.",
      );
    }
    case "cai_run":
      return select(
        "None",
        sources.caiRuns.map((r) => ({
          value: r.id,
          label: `Run ${r.id} · ${formatWhen(r.finished_at ?? r.created_at)}${typeof r.outputs?.revised === "number" ? ` · ${r.outputs.revised} revised` : ""}`,
        })),
        "No succeeded cai_revise run in this project.",
      );
    case "split":
      return select(
        "Default",
        SPLITS.map((s) => ({ value: s, label: s })),
      );
    case "templates": {
      const checked = Array.isArray(value) ? value : [];
      const noteId = `${groupId}-note`;
      return (
        <fieldset className={`plain field${error ? " invalid" : ""}`} aria-describedby={noteId} aria-invalid={error ? true : undefined}>
          <legend className="field-label">{label}</legend>
          {sources.templates.length === 0 && <span className="muted small">This project has no template.</span>}
          {sources.templates.map((t) => (
            <label key={t.id} className="check">
              <input
                type="checkbox"
                checked={checked.includes(String(t.id))}
                onChange={(e) => onChange(e.target.checked ? [...checked, String(t.id)] : checked.filter((id) => id !== String(t.id)))}
              />{" "}
              {t.name}
              {t.is_default ? " (default)" : ""}
            </label>
          ))}
          {error ? (
            <span className="field-error" role="alert" id={noteId}>
              {error}
            </span>
          ) : (
            <span className="hint" id={noteId}>
              {hint}
            </span>
          )}
        </fieldset>
      );
    }
    case "json":
      return (
        <Field label={label} error={error} hint={hint}>
          <textarea className="mono" rows={3} value={text} placeholder='{"config": {"num_train_epochs": 1}, "output_model": "my-model-cai"}' onChange={(e) => onChange(e.target.value)} />
        </Field>
      );
    case "number":
      return (
        <Field label={label} error={error} hint={hint}>
          <input inputMode="numeric" className="narrow" value={text} placeholder="all" onChange={(e) => onChange(e.target.value)} />
        </Field>
      );
    default: {
      // target_field / reference_field: offer the chosen dataset's columns.
      const dataset = name.endsWith("_field") ? sources.datasets.find((d) => String(d.id) === datasetId) : undefined;
      return (
        <>
          <Field label={label} error={error} hint={hint}>
            <input value={text} list={dataset ? listId : undefined} onChange={(e) => onChange(e.target.value)} />
          </Field>
          {dataset && (
            <datalist id={listId}>
              {dataset.fields.map((f) => (
                <option key={f} value={f} />
              ))}
            </datalist>
          )}
        </>
      );
    }
  }
}

function ConfigTable({
  fields,
  values,
  errors,
  onChange,
  label,
}: {
  fields: RunConfigField[];
  values: Record<string, string | boolean>;
  errors: Record<string, string>;
  onChange: (name: string, value: string | boolean) => void;
  label: string;
}) {
  return (
    <table className="table compact config-table" aria-label={label}>
      <thead>
        <tr>
          <th>Field</th>
          <th>Value</th>
          <th>Type</th>
        </tr>
      </thead>
      <tbody>
        {fields.map((field) => (
          <ConfigRow key={field.name} field={field} value={values[field.name]} error={errors[`config.${field.name}`]} onChange={(v) => onChange(field.name, v)} />
        ))}
      </tbody>
    </table>
  );
}

function ConfigRow({ field, value, error, onChange }: { field: RunConfigField; value: string | boolean | undefined; error?: string; onChange: (value: string | boolean) => void }) {
  const id = useId();
  const noteId = `${id}-note`;
  const listId = `${id}-list`;
  const control = configControl(field);
  const notes: string[] = [];
  if (field.worker_path) notes.push("A path on the workers: platform admins only.");
  if (control === "csv") notes.push("Comma-separated.");
  if (isOptional(field) && control !== "checkbox") notes.push("“none” clears it.");
  const note = notes.join(" ");
  const common = {
    id,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error || note ? noteId : undefined,
  };
  const text = typeof value === "string" ? value : "";
  const changed = control === "checkbox" ? typeof value === "boolean" && value !== field.default : text.trim() !== "";
  return (
    <tr className={`${error ? "invalid" : ""}${changed ? " changed" : ""}`.trim() || undefined} data-field={field.name}>
      <th scope="row">
        <label htmlFor={id}>
          <code>{field.name}</code>
        </label>
      </th>
      <td className={`field${error ? " invalid" : ""}`}>
        {control === "checkbox" ? (
          <span className="check">
            <input type="checkbox" {...common} checked={typeof value === "boolean" ? value : field.default === true} onChange={(e) => onChange(e.target.checked)} />
            <span className="muted small">default {field.default === true ? "on" : "off"}</span>
          </span>
        ) : control === "json" ? (
          <textarea {...common} className="mono" rows={2} value={text} placeholder={defaultText(field)} onChange={(e) => onChange(e.target.value)} />
        ) : (
          <>
            <input
              {...common}
              className="mono"
              inputMode={control === "int" ? "numeric" : control === "float" ? "decimal" : undefined}
              value={text}
              placeholder={defaultText(field)}
              list={SUGGESTIONS[field.name] ? listId : undefined}
              onChange={(e) => onChange(e.target.value)}
            />
            {SUGGESTIONS[field.name] && (
              <datalist id={listId}>
                {SUGGESTIONS[field.name].map((s) => (
                  <option key={s} value={s} />
                ))}
              </datalist>
            )}
          </>
        )}
        {error ? (
          <span className="field-error" role="alert" id={noteId}>
            {error}
          </span>
        ) : (
          note && (
            <span className="hint" id={noteId}>
              {note}
            </span>
          )
        )}
      </td>
      <td className="muted small">
        <code>{field.type}</code>
        {field.required ? " · required" : ""}
      </td>
    </tr>
  );
}
