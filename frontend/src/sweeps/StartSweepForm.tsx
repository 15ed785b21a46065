/**
 * Start a hyperparameter sweep (POST /api/sweeps/) from a project's Sweeps tab: pick a kind (GET
 * /api/sweeps/kinds/: the metrics it reports and the fields a search may vary), fill the inputs and
 * base config as the start-run form takes them (GET /api/runs/kinds/; runs/startRun.ts builds them),
 * add a search-space row per field (a choice of values, or an int/float range with low, high, log
 * and step), then the metric, direction, budget, parallelism, sampler, pruner, seed and alias. The
 * rules live in sweeps.ts; a 400 puts each error next to its field (a search-space error at its row),
 * a 202 opens the new sweep's page.
 */
import { useId, useState, type FormEvent } from "react";
import { runsApi } from "../api";
import { navigate } from "../router";
import { ConfigFieldset, InputsFieldset, StartActions, usePickerSources, useRunFormErrors } from "../runs/RunFormParts";
import { splitConfig, type InputValue } from "../runs/startRun";
import { ErrorNote, Field, FieldNote } from "../ui/components";
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
  const [sending, setSending] = useState(false);
  const sources = usePickerSources(projectId, runSpec);
  const base = runSpec ? splitConfig(baseSpec(runSpec, rows)) : { common: [], advanced: [] };
  const { errors, setErrors, clearError, showErrors, formRef } = useRunFormErrors(base.advanced, () => setShowAdvanced(true));

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
          <InputsFieldset
            legend="Inputs (every trial’s)"
            spec={runSpec}
            values={inputs}
            errors={errors}
            sources={sources}
            onChange={(name, value) => {
              setInputs((current) => ({ ...current, [name]: value }));
              clearError(`inputs.${name}`);
            }}
          >
            {runSpec.inputs.includes("output_model") && (
              <p className="muted small">Without an output model name, the trials’ versions go to a new model sweep-&lt;id&gt;-{runSpec.kind.replace(/_/g, "-")}.</p>
            )}
          </InputsFieldset>
          <ConfigFieldset
            legend="Base config (every trial’s, less the searched fields)"
            label="Base config"
            common={base.common}
            advanced={base.advanced}
            values={config}
            errors={errors}
            onChange={(name, value) => {
              setConfig((current) => ({ ...current, [name]: value }));
              clearError(`config.${name}`);
            }}
            showAdvanced={showAdvanced}
            onToggleAdvanced={() => setShowAdvanced((open) => !open)}
          />
        </>
      )}
      <StartActions general={general} testId="start-sweep-error" sending={sending} ready={!!kinds.data} label="Start sweep" onCancel={onCancel} />
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
        <FieldNote id={noteId} error={error} hint={hint} />
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
