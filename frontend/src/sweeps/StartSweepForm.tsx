/**
 * Start a hyperparameter sweep (POST /api/sweeps/) from a project's Sweeps tab: pick a kind (GET
 * /api/sweeps/kinds/: the metrics it reports and the fields a search may vary), fill the inputs and
 * base config as the start-run form takes them (GET /api/runs/kinds/; runs/startRun.ts builds them),
 * add a search-space row per field (a choice of values, or an int/float range with low, high, log
 * and step), then the metric, direction, budget, parallelism, sampler, pruner, seed and alias. The
 * rules live in sweeps.ts; a 400 puts each error next to its field (a search-space error at its row),
 * a 202 opens the new sweep's page.
 */
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import { api, constitutionApi, registryVersions, runsApi, type Page, type RunConfigField, type RunKindSpec } from "../api";
import type { Dataset, Snapshot, Template } from "../admin/types";
import { navigate } from "../router";
import type { Run } from "../runs/runEvents";
import { ALTERNATIVES, configControl, defaultText, inputSpec, isOptional, splitConfig, SUGGESTIONS, versionChoices, type InputValue } from "../runs/startRun";
import { ErrorNote, Field } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import {
  baseSpec,
  buildSweepRequest,
  defaultDirection,
  errorPlace,
  foldErrors,
  formatParam,
  mapSweepErrors,
  MAX_FIELDS,
  newRow,
  rangeTypes,
  sweepFieldKeys,
  type RangeType,
  type SpaceRow,
  type SweepForm,
} from "./sweeps";
import { sweepsApi } from "./sweepsApi";
import type { SweepField } from "./types";

const SPLITS = ["train", "eval", "test"];

const EMPTY: Omit<SweepForm, "inputs" | "config" | "rows"> = {
  metric: "",
  direction: "maximize",
  budget: "8",
  parallelism: "2",
  sampler: "tpe",
  pruner: "median",
  seed: "",
  alias: "",
};

/** What the input pickers offer, loaded only for the inputs the chosen kind takes. */
function usePickerSources(projectId: number, spec: RunKindSpec | null) {
  const needs = (...names: string[]) => !!spec && names.some((n) => spec.inputs.includes(n));
  const flags = {
    registry: needs("base_version", "reward_version", "kl_base_version"),
    snapshots: needs("snapshot"),
    datasets: needs("dataset"),
    templates: needs("template", "templates"),
    constitutions: needs("constitution"),
    caiRuns: needs("cai_run"),
  };
  const registry = useLoad(async () => (flags.registry ? registryVersions() : []), `registry:${flags.registry}`);
  const snapshots = useLoad(
    async () => (flags.snapshots ? (await api.get<Page<Snapshot>>(`projects/${projectId}/snapshots/`, { status: "ready", limit: 100 })).results : []),
    `snapshots:${projectId}:${flags.snapshots}`,
  );
  const datasets = useLoad(
    async () => (flags.datasets ? (await api.get<Page<Dataset>>(`projects/${projectId}/datasets/`, { limit: 200 })).results : []),
    `datasets:${projectId}:${flags.datasets}`,
  );
  const templates = useLoad(
    async () => (flags.templates ? (await api.get<Page<Template>>(`projects/${projectId}/templates/`, { limit: 200 })).results : []),
    `templates:${projectId}:${flags.templates}`,
  );
  const constitutions = useLoad(async () => (flags.constitutions ? (await constitutionApi.list(projectId)).results : []), `constitutions:${projectId}:${flags.constitutions}`);
  const caiRuns = useLoad(
    async () => (flags.caiRuns ? (await api.get<Page<Run>>("runs/", { project: projectId, kind: "cai_revise", state: "succeeded", limit: 100 })).results : []),
    `cai-runs:${projectId}:${flags.caiRuns}`,
  );
  return {
    registry: registry.data ?? [],
    snapshots: snapshots.data ?? [],
    datasets: datasets.data ?? [],
    templates: templates.data ?? [],
    constitutions: constitutions.data ?? [],
    caiRuns: caiRuns.data ?? [],
    error: registry.error ?? snapshots.error ?? datasets.error ?? templates.error ?? constitutions.error ?? caiRuns.error,
  };
}

type Sources = ReturnType<typeof usePickerSources>;

export function StartSweepForm({ projectId, onCancel }: { projectId: number; onCancel: () => void }) {
  const kinds = useLoad(() => Promise.all([sweepsApi.kinds(), runsApi.kinds()]), "sweep-kinds");
  const [kind, setKind] = useState("");
  const sweepKinds = (kinds.data?.[0] ?? []).filter((k) => kinds.data?.[1].some((r) => r.kind === k.kind));
  const sweepKind = sweepKinds.find((k) => k.kind === kind) ?? null;
  const runSpec = kinds.data?.[1].find((r) => r.kind === kind) ?? null;
  const [inputs, setInputs] = useState<Record<string, InputValue>>({});
  const [config, setConfig] = useState<Record<string, string | boolean>>({});
  const [rows, setRows] = useState<SpaceRow[]>([]);
  const [objective, setObjective] = useState(EMPTY);
  const [directionTouched, setDirectionTouched] = useState(false);
  const [showAdvanced, setShowAdvanced] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [sending, setSending] = useState(false);
  const [focusError, setFocusError] = useState(0);
  const formRef = useRef<HTMLFormElement>(null);
  const sources = usePickerSources(projectId, runSpec);
  const base = runSpec ? splitConfig(baseSpec(runSpec, rows)) : { common: [], advanced: [] };

  useEffect(() => {
    if (focusError) formRef.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus();
  }, [focusError]);

  const clearError = (key: string) =>
    setErrors((current) => {
      if (!(key in current)) return current;
      const { [key]: _dropped, ...rest } = current;
      return rest;
    });
  const setField = <K extends keyof typeof EMPTY>(key: K, value: string) => {
    setObjective((current) => ({ ...current, [key]: value }));
    clearError(key);
  };
  const chooseMetric = (metric: string) => {
    setObjective((current) => ({ ...current, metric, direction: directionTouched || !metric ? current.direction : defaultDirection(metric) }));
    clearError("metric");
  };
  const chooseKind = (next: string) => {
    setKind(next);
    setConfig({});
    setRows([]);
    setErrors({});
    setShowAdvanced(false);
    setDirectionTouched(false);
    setObjective((current) => ({ ...current, metric: "" }));
  };
  const setRow = (field: string, change: Partial<SpaceRow>) => {
    setRows((current) => current.map((r) => (r.field === field ? { ...r, ...change } : r)));
    clearError(`search_space.${field}`);
    clearError("search_space");
  };
  const addRow = (field: SweepField) => {
    setRows((current) => [...current, newRow(field)]);
    clearError("search_space");
  };

  const showErrors = (next: Record<string, string>) => {
    setErrors(next);
    if (base.advanced.some((f) => `config.${f.name}` in next)) setShowAdvanced(true);
    setFocusError((n) => n + 1);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!sweepKind || !runSpec) {
      showErrors({ kind: "Choose the kind of run to sweep." });
      return;
    }
    const known = sweepFieldKeys(runSpec, rows);
    const built = buildSweepRequest(sweepKind, runSpec, projectId, { inputs, config, rows, ...objective });
    if (built.errors) {
      showErrors(foldErrors(built.errors, known));
      return;
    }
    setSending(true);
    setErrors({});
    try {
      const sweep = await sweepsApi.start(built.body);
      navigate(`/projects/${projectId}/admin/sweeps/${sweep.id}`);
    } catch (error) {
      setSending(false);
      showErrors(mapSweepErrors(error, known));
    }
  };

  const fieldKeys = Object.keys(errors).filter((k) => k !== "");
  const general =
    errors[""] ?? (fieldKeys.length ? `Not started: see ${fieldKeys.length === 1 ? "the error at" : "the errors at"} ${fieldKeys.map(errorPlace).join(", ")}.` : "");
  const unused = (sweepKind?.fields ?? []).filter((f) => !rows.some((r) => r.field === f.name));

  return (
    <form ref={formRef} className="card form start-run start-sweep" onSubmit={submit} aria-label="Start a sweep" noValidate>
      <div className="editor-head">
        <h2>Start a sweep</h2>
      </div>
      <p className="muted small">
        Every trial is a run of the kind with the base config and inputs below and its own values of the searched fields; trials are queued for the
        workers, up to the parallelism at once, until the budget is spent. Config fields left empty keep their defaults.
      </p>
      <ErrorNote error={kinds.error} />
      {kinds.loading && !kinds.data && <p role="status">Loading the kinds a sweep can search…</p>}
      {kinds.data && (
        <div className="row kind-row">
          <Field label="Kind" error={errors.kind} hint={runSpec?.description || "The run kind each trial is a run of."}>
            <select value={kind} onChange={(e) => chooseKind(e.target.value)}>
              <option value="">Choose a kind…</option>
              {sweepKinds.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.kind}
                </option>
              ))}
            </select>
          </Field>
        </div>
      )}
      {sweepKind && runSpec && (
        <>
          <fieldset className="run-config search-space" aria-describedby={errors.search_space ? "search-space-error" : undefined}>
            <legend className="field-label">Search space</legend>
            <p className="muted small">
              A row per field the trials vary: a choice of values (comma-separated, or a JSON list), or an int/float range from low to high, on a log scale
              for rates. At most {MAX_FIELDS} fields.
            </p>
            {rows.length > 0 && (
              <table className="table compact config-table" aria-label="Search space">
                <thead>
                  <tr>
                    <th>Field</th>
                    <th>Range</th>
                    <th>Values</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {rows.map((row) => (
                    <SpaceRowEditor
                      key={row.field}
                      row={row}
                      field={sweepKind.fields.find((f) => f.name === row.field)}
                      error={errors[`search_space.${row.field}`]}
                      onChange={(change) => setRow(row.field, change)}
                      onRemove={() => {
                        setRows((current) => current.filter((r) => r.field !== row.field));
                        clearError(`search_space.${row.field}`);
                      }}
                    />
                  ))}
                </tbody>
              </table>
            )}
            <AddField fields={unused} full={rows.length >= MAX_FIELDS} onAdd={addRow} invalid={!!errors.search_space} />
            {errors.search_space && (
              <span className="field-error" role="alert" id="search-space-error">
                {errors.search_space}
              </span>
            )}
          </fieldset>
          <fieldset className="run-config objective">
            <legend className="field-label">Objective and budget</legend>
            <div className="row">
              <Field label="Metric" error={errors.metric} hint="What the kind’s result reports; the trials are ranked by it.">
                <select value={objective.metric} onChange={(e) => chooseMetric(e.target.value)}>
                  <option value="">Choose a metric…</option>
                  {sweepKind.metrics.map((m) => (
                    <option key={m} value={m}>
                      {m}
                    </option>
                  ))}
                </select>
              </Field>
              <Field label="Direction" error={errors.direction} hint="Whether larger or smaller is better.">
                <select
                  value={objective.direction}
                  onChange={(e) => {
                    setDirectionTouched(true);
                    setField("direction", e.target.value);
                  }}
                >
                  <option value="maximize">maximize</option>
                  <option value="minimize">minimize</option>
                </select>
              </Field>
              <Field label="Budget" error={errors.budget} hint="Trials in all.">
                <input inputMode="numeric" className="narrow" value={objective.budget} onChange={(e) => setField("budget", e.target.value)} />
              </Field>
              <Field label="Parallelism" error={errors.parallelism} hint="Trials at once.">
                <input inputMode="numeric" className="narrow" value={objective.parallelism} placeholder="1" onChange={(e) => setField("parallelism", e.target.value)} />
              </Field>
            </div>
            <div className="row">
              <Field label="Sampler" error={errors.sampler} hint="TPE learns from the trials so far; random does not.">
                <select value={objective.sampler} onChange={(e) => setField("sampler", e.target.value)}>
                  <option value="tpe">TPE</option>
                  <option value="random">random</option>
                </select>
              </Field>
              <Field label="Pruner" error={errors.pruner} hint="median: stop a trial worse than the median at its step (after 5 trials).">
                <select value={objective.pruner} onChange={(e) => setField("pruner", e.target.value)}>
                  <option value="median">median</option>
                  <option value="none">none</option>
                </select>
              </Field>
              <Field label="Seed" error={errors.seed} hint="Optional: the same sweep asks the same parameters.">
                <input inputMode="numeric" className="narrow" value={objective.seed} placeholder="random" onChange={(e) => setField("seed", e.target.value)} />
              </Field>
              <Field label="Alias" error={errors.alias} hint="Set on the best trial’s model version when the sweep ends.">
                <input className="narrow" value={objective.alias} placeholder="best" onChange={(e) => setField("alias", e.target.value)} />
              </Field>
            </div>
          </fieldset>
          <fieldset className="run-inputs">
            <legend className="field-label">Inputs (every trial’s)</legend>
            {ALTERNATIVES[runSpec.kind] && (
              <p className="alternatives small" data-testid="input-alternatives">
                {ALTERNATIVES[runSpec.kind]}
              </p>
            )}
            <ErrorNote error={sources.error} />
            <div className="grid-3">
              {runSpec.inputs.map((name) => (
                <InputPicker
                  key={name}
                  spec={runSpec}
                  name={name}
                  value={inputs[name]}
                  error={errors[`inputs.${name}`]}
                  sources={sources}
                  datasetId={inputs.dataset}
                  onChange={(value) => {
                    setInputs((current) => ({ ...current, [name]: value }));
                    clearError(`inputs.${name}`);
                  }}
                />
              ))}
            </div>
            {runSpec.inputs.includes("output_model") && (
              <p className="muted small">Without an output model name, the trials’ versions go to a new model sweep-&lt;id&gt;-{runSpec.kind.replace(/_/g, "-")}.</p>
            )}
          </fieldset>
          <fieldset className="run-config">
            <legend className="field-label">Base config (every trial’s, less the searched fields)</legend>
            <BaseConfigTable
              fields={base.common}
              values={config}
              errors={errors}
              label="Base config"
              onChange={(name, value) => {
                setConfig((current) => ({ ...current, [name]: value }));
                clearError(`config.${name}`);
              }}
            />
            {base.advanced.length > 0 && (
              <p className="advanced-toggle">
                <button type="button" className="link" aria-expanded={showAdvanced} onClick={() => setShowAdvanced((open) => !open)}>
                  {showAdvanced ? "▾" : "▸"} Advanced: {base.advanced.length} more fields
                </button>
              </p>
            )}
            {showAdvanced && (
              <BaseConfigTable
                fields={base.advanced}
                values={config}
                errors={errors}
                label="Advanced base config"
                onChange={(name, value) => {
                  setConfig((current) => ({ ...current, [name]: value }));
                  clearError(`config.${name}`);
                }}
              />
            )}
          </fieldset>
        </>
      )}
      {general && (
        <p className="error" role="alert" data-testid="start-sweep-error">
          {general}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={sending || !kinds.data}>
          {sending ? "Starting…" : "Start sweep"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

const RANGE_LABELS: Record<RangeType, string> = { choice: "choice", int: "int range", float: "float range" };

/** One searched field: its range type, then its values (a choice) or low, high, log and step (a range). */
function SpaceRowEditor({ row, field, error, onChange, onRemove }: { row: SpaceRow; field: SweepField | undefined; error?: string; onChange: (change: Partial<SpaceRow>) => void; onRemove: () => void }) {
  const id = useId();
  const noteId = `${id}-note`;
  const invalid = error ? true : undefined;
  const described = noteId;
  const types = field ? rangeTypes(field) : [row.type];
  const hint = field
    ? `${field.type} · default ${formatParam(field.default)}${row.type === "choice" ? " · comma-separated, or a JSON list" : ""}`
    : "";
  return (
    <tr className={error ? "invalid" : undefined} data-field={row.field}>
      <th scope="row">
        <label htmlFor={id}>
          <code>{row.field}</code>
        </label>
      </th>
      <td>
        <select id={id} value={row.type} aria-label={`${row.field} range`} onChange={(e) => onChange({ type: e.target.value as RangeType })}>
          {types.map((t) => (
            <option key={t} value={t}>
              {RANGE_LABELS[t]}
            </option>
          ))}
        </select>
      </td>
      <td className={`field${error ? " invalid" : ""}`}>
        {row.type === "choice" ? (
          <input
            className="mono"
            aria-label={`${row.field} values`}
            aria-invalid={invalid}
            aria-describedby={described}
            value={row.values}
            placeholder={field ? `e.g. ${formatParam(field.default)}, …` : ""}
            onChange={(e) => onChange({ values: e.target.value })}
          />
        ) : (
          <span className="row">
            <label className="check">
              low{" "}
              <input className="narrow mono" inputMode="decimal" aria-invalid={invalid} aria-describedby={described} value={row.low} onChange={(e) => onChange({ low: e.target.value })} />
            </label>
            <label className="check">
              high{" "}
              <input className="narrow mono" inputMode="decimal" aria-invalid={invalid} aria-describedby={described} value={row.high} onChange={(e) => onChange({ high: e.target.value })} />
            </label>
            <label className="check">
              <input type="checkbox" checked={row.log} onChange={(e) => onChange({ log: e.target.checked })} /> log
            </label>
            <label className="check">
              step{" "}
              <input className="narrow mono" inputMode="decimal" aria-invalid={invalid} aria-describedby={described} value={row.step} placeholder="none" onChange={(e) => onChange({ step: e.target.value })} />
            </label>
          </span>
        )}
        {error ? (
          <span className="field-error" role="alert" id={noteId}>
            {error}
          </span>
        ) : (
          <span className="hint" id={noteId}>
            {hint}
          </span>
        )}
      </td>
      <td>
        <button type="button" className="link danger" onClick={onRemove} aria-label={`Remove ${row.field}`}>
          Remove
        </button>
      </td>
    </tr>
  );
}

/** A picker of the fields not searched yet; choosing one adds its row. */
function AddField({ fields, full, invalid, onAdd }: { fields: SweepField[]; full: boolean; invalid: boolean; onAdd: (field: SweepField) => void }) {
  if (fields.length === 0 || full) return null;
  return (
    <label className="check">
      Add a field to search{" "}
      <select
        value=""
        aria-invalid={invalid || undefined}
        onChange={(e) => {
          const field = fields.find((f) => f.name === e.target.value);
          if (field) onAdd(field);
        }}
      >
        <option value="">Choose a field…</option>
        {fields.map((f) => (
          <option key={f.name} value={f.name}>
            {`${f.name} (${f.type}, default ${formatParam(f.default)})`}
          </option>
        ))}
      </select>
    </label>
  );
}

/** One input of the kind, picked as the start-run form picks it (runs/startRun.ts inputSpec). */
function InputPicker({
  spec,
  name,
  value,
  error,
  sources,
  datasetId,
  onChange,
}: {
  spec: RunKindSpec;
  name: string;
  value: InputValue | undefined;
  error?: string;
  sources: Sources;
  datasetId: InputValue | undefined;
  onChange: (value: InputValue) => void;
}) {
  const input = inputSpec(spec, name);
  const text = typeof value === "string" ? value : "";
  const hint: ReactNode = (
    <>
      <code>{name}</code> · {input.hint}
    </>
  );
  const select = (placeholder: string, options: { value: string | number; label: string }[]) => (
    <Field label={input.label} error={error} hint={hint}>
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
  switch (input.control) {
    case "version":
      return select(
        name === "base_version" ? "Choose a version…" : "None",
        versionChoices(sources.registry, spec.kind, name).map((c) => ({ value: c.id, label: c.label })),
      );
    case "snapshot":
      return select("None", sources.snapshots.map((s) => ({ value: s.id, label: `v${s.version} · ${(s.counts.pairs ?? 0).toLocaleString()} pairs` })));
    case "dataset":
      return select("None", sources.datasets.map((d) => ({ value: d.id, label: `${d.name} (${d.row_count.toLocaleString()} rows)` })));
    case "template":
      return select("Project default", sources.templates.map((t) => ({ value: t.id, label: `${t.name}${t.is_default ? " (default)" : ""}` })));
    case "constitution":
      return select("Newest", sources.constitutions.map((c) => ({ value: c.version, label: `v${c.version}${c.note ? ` · ${c.note.slice(0, 40)}` : ""}` })));
    case "cai_run":
      return select("None", sources.caiRuns.map((r) => ({ value: r.id, label: `Run ${r.id} · ${formatWhen(r.finished_at ?? r.created_at)}` })));
    case "split":
      return select("Default", SPLITS.map((s) => ({ value: s, label: s })));
    case "templates": {
      const checked = Array.isArray(value) ? value : [];
      return (
        <fieldset className={`plain field${error ? " invalid" : ""}`} aria-invalid={error ? true : undefined}>
          <legend className="field-label">{input.label}</legend>
          {sources.templates.map((t) => (
            <label key={t.id} className="check">
              <input
                type="checkbox"
                checked={checked.includes(String(t.id))}
                onChange={(e) => onChange(e.target.checked ? [...checked, String(t.id)] : checked.filter((v) => v !== String(t.id)))}
              />{" "}
              {t.name}
            </label>
          ))}
          {error ? (
            <span className="field-error" role="alert">
              {error}
            </span>
          ) : (
            <span className="hint">{hint}</span>
          )}
        </fieldset>
      );
    }
    case "json":
      return (
        <Field label={input.label} error={error} hint={hint}>
          <textarea className="mono" rows={3} value={text} onChange={(e) => onChange(e.target.value)} />
        </Field>
      );
    case "number":
      return (
        <Field label={input.label} error={error} hint={hint}>
          <input inputMode="numeric" className="narrow" value={text} placeholder="all" onChange={(e) => onChange(e.target.value)} />
        </Field>
      );
    default: {
      const dataset = name.endsWith("_field") ? sources.datasets.find((d) => String(d.id) === datasetId) : undefined;
      return (
        <Field label={input.label} error={error} hint={dataset ? <>{hint} Columns: {dataset.fields.join(", ")}.</> : hint}>
          <input value={text} onChange={(e) => onChange(e.target.value)} />
        </Field>
      );
    }
  }
}

/** The base config's fields (their defaults as placeholders; empty ones are not sent), as the start-run form shows them. */
function BaseConfigTable({
  fields,
  values,
  errors,
  label,
  onChange,
}: {
  fields: RunConfigField[];
  values: Record<string, string | boolean>;
  errors: Record<string, string>;
  label: string;
  onChange: (name: string, value: string | boolean) => void;
}) {
  if (fields.length === 0) return <p className="muted small">No common fields for this kind; see Advanced.</p>;
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
          <BaseConfigRow key={field.name} field={field} value={values[field.name]} error={errors[`config.${field.name}`]} onChange={(v) => onChange(field.name, v)} />
        ))}
      </tbody>
    </table>
  );
}

function BaseConfigRow({ field, value, error, onChange }: { field: RunConfigField; value: string | boolean | undefined; error?: string; onChange: (value: string | boolean) => void }) {
  const id = useId();
  const noteId = `${id}-note`;
  const listId = `${id}-list`;
  const control = configControl(field);
  const notes: string[] = [];
  if (field.worker_path) notes.push("A path on the workers: platform admins only.");
  if (control === "csv") notes.push("Comma-separated.");
  if (isOptional(field) && control !== "checkbox") notes.push("“none” clears it.");
  const note = notes.join(" ");
  const common = { id, "aria-invalid": error ? true : undefined, "aria-describedby": error || note ? noteId : undefined };
  const text = typeof value === "string" ? value : "";
  return (
    <tr className={error ? "invalid" : undefined} data-field={field.name}>
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
