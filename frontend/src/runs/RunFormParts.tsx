/**
 * The parts the start-run form (StartRunForm.tsx) and the start-sweep form (sweeps/StartSweepForm.tsx)
 * share: what the input pickers offer (loaded only for the inputs the chosen kind takes), the note on
 * how a kind's inputs combine, one picker per input, the config fields table with its Advanced toggle,
 * and the error bookkeeping of a form whose errors sit next to their fields. The rules (which control
 * an input takes, how a value is parsed) live in startRun.ts.
 */
import { useId, type ReactNode } from "react";
import { api, constitutionApi, registryVersions, type Page, type RunConfigField, type RunKindSpec } from "../api";
import type { Dataset, Snapshot, Template } from "../admin/types";
import { ErrorNote, Field, FieldNote } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useFieldErrors, useLoad } from "../ui/hooks";
import type { Run } from "./runEvents";
import { configControl, defaultText, inputSpec, isOptional, SUGGESTIONS, versionChoices, type InputValue } from "./startRun";

const SPLITS = ["train", "eval", "test"];
const VERSION_INPUTS = ["base_version", "reward_version", "kl_base_version"];

/** What the pickers offer, loaded only for the inputs the chosen kind takes. */
export function usePickerSources(projectId: number, spec: RunKindSpec | null) {
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

export type PickerSources = ReturnType<typeof usePickerSources>;

/**
 * A run form's errors (ui/hooks' useFieldErrors): `showErrors` after a refused submit also opens
 * Advanced when an advanced field has one, before focusing the first invalid field.
 */
export function useRunFormErrors(advanced: RunConfigField[], openAdvanced: () => void) {
  const { errors, setErrors, clearError, show, formRef } = useFieldErrors();
  const showErrors = (next: Record<string, string>) => {
    if (advanced.some((f) => `config.${f.name}` in next)) openAdvanced();
    show(next);
  };
  return { errors, setErrors, clearError, showErrors, formRef };
}

/** The inputs of a kind: how they combine (`inputs_note`), then one picker each. */
export function InputsFieldset({
  legend,
  spec,
  values,
  errors,
  sources,
  onChange,
  children,
}: {
  legend: string;
  spec: RunKindSpec;
  values: Record<string, InputValue>;
  errors: Record<string, string>;
  sources: PickerSources;
  onChange: (name: string, value: InputValue) => void;
  children?: ReactNode;
}) {
  return (
    <fieldset className="run-inputs">
      <legend className="field-label">{legend}</legend>
      {spec.inputs_note && (
        <p className="alternatives small" data-testid="input-alternatives">
          {spec.inputs_note}
        </p>
      )}
      <ErrorNote error={sources.error} />
      <div className="grid-3">
        {spec.inputs.map((name) => (
          <InputField
            key={name}
            spec={spec}
            name={name}
            value={values[name]}
            onChange={(value) => onChange(name, value)}
            error={errors[`inputs.${name}`]}
            sources={sources}
            datasetId={values.dataset}
          />
        ))}
      </div>
      {children}
    </fieldset>
  );
}

/** One input of the kind, with the picker its control takes (startRun.ts inputSpec). */
export function InputField({
  spec: kindSpec,
  name,
  value,
  onChange,
  error,
  sources,
  datasetId,
}: {
  spec: RunKindSpec;
  name: string;
  value: InputValue | undefined;
  onChange: (value: InputValue) => void;
  error?: string;
  sources: PickerSources;
  datasetId: InputValue | undefined;
}) {
  const spec = inputSpec(kindSpec, name);
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
      const choices = versionChoices(sources.registry, kindSpec, name);
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
          <FieldNote id={noteId} error={error} hint={hint} />
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

/**
 * A config fieldset: the common fields (`label`), then "Advanced: N more fields" that opens the rest
 * (`Advanced ${label lowercased}`); a field's default is its placeholder, an untouched one is not sent.
 */
export function ConfigFieldset({
  legend,
  label,
  common,
  advanced,
  values,
  errors,
  onChange,
  showAdvanced,
  onToggleAdvanced,
}: {
  legend: string;
  label: string;
  common: RunConfigField[];
  advanced: RunConfigField[];
  values: Record<string, string | boolean>;
  errors: Record<string, string>;
  onChange: (name: string, value: string | boolean) => void;
  showAdvanced: boolean;
  onToggleAdvanced: () => void;
}) {
  const changedAdvanced = advanced.filter((f) => values[f.name] !== undefined && values[f.name] !== "" && values[f.name] !== f.default).length;
  return (
    <fieldset className="run-config">
      <legend className="field-label">{legend}</legend>
      {common.length > 0 ? (
        <ConfigTable fields={common} values={values} errors={errors} onChange={onChange} label={label} />
      ) : (
        <p className="muted small">No common fields for this kind; see Advanced.</p>
      )}
      {advanced.length > 0 && (
        <>
          <p className="advanced-toggle">
            <button type="button" className="link" aria-expanded={showAdvanced} onClick={onToggleAdvanced}>
              {showAdvanced ? "▾" : "▸"} Advanced: {advanced.length} more fields{changedAdvanced ? ` (${changedAdvanced} changed)` : ""}
            </button>
          </p>
          {showAdvanced && <ConfigTable fields={advanced} values={values} errors={errors} onChange={onChange} label={`Advanced ${label.charAt(0).toLowerCase()}${label.slice(1)}`} />}
        </>
      )}
    </fieldset>
  );
}

/** Config fields as a table: name, value (its default as placeholder), type. */
export function ConfigTable({
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
        <FieldNote id={noteId} error={error} hint={note || undefined} />
      </td>
      <td className="muted small">
        <code>{field.type}</code>
        {field.required ? " · required" : ""}
      </td>
    </tr>
  );
}

/** A start form's last lines: the error that names no field, then submit ("Starting…" while it sends) and Cancel. */
export function StartActions({ general, testId, sending, ready, label, onCancel }: { general?: string; testId: string; sending: boolean; ready: boolean; label: string; onCancel: () => void }) {
  return (
    <>
      {general && (
        <p className="error" role="alert" data-testid={testId}>
          {general}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={sending || !ready}>
          {sending ? "Starting…" : label}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </>
  );
}
