/**
 * Start a side-by-side evaluation (POST /api/projects/{source}/evaluations/): the source project, one
 * of its datasets, the split and how many prompts, 2..8 registered versions to compare, and optionally
 * the round of the loop it belongs to (a round of the source project). A 400
 * puts each error at its field (newEval.ts maps it); a 201 opens the new evaluation.
 */
import { useId, useState, type FormEvent } from "react";
import type { Dataset, Template } from "../admin/types";
import { api, type Page } from "../api";
import { RoundField } from "../rounds/RoundField";
import { CAUSAL_LM_BASE, versionChoices } from "../runs/startRun";
import { Field, FieldNote, GenerationFields } from "../ui/components";
import { errorText } from "../ui/format";
import { useFormState, useLoad } from "../ui/hooks";
import { evalApi, usableVersions } from "./evalApi";
import { buildCreateBody, DEFAULT_LIMIT, EMPTY_FORM, mapCreateErrors, MAX_LIMIT, MAX_VERSIONS, MIN_VERSIONS, type EvalForm, type SplitChoice } from "./newEval";
import type { Evaluation, ProjectWithKind } from "./types";

const SPLITS: { value: SplitChoice; label: string }[] = [
  { value: "test", label: "test (default)" },
  { value: "eval", label: "eval" },
  { value: "train", label: "train" },
  { value: "all", label: "every split" },
];

type Props = { projects: ProjectWithKind[]; initialProject?: number; onCreated: (ev: Evaluation) => void; onCancel: () => void };

export function NewEvaluationForm({ projects, initialProject, onCreated, onCancel }: Props) {
  const { form, setForm, errors, setErrors, set, show, formRef } = useFormState<EvalForm>({ ...EMPTY_FORM, project: initialProject ? String(initialProject) : projects.length === 1 ? String(projects[0].id) : "" });
  const [sending, setSending] = useState(false);
  const projectId = form.project ? Number(form.project) : null;
  const datasets = useLoad(
    async () => (projectId ? (await api.get<Page<Dataset>>(`projects/${projectId}/datasets/`, { limit: 200 })).results : []),
    `datasets:${projectId}`,
  );
  const templates = useLoad(
    async () => (projectId ? (await api.get<Page<Template>>(`projects/${projectId}/templates/`, { limit: 200 })).results : []),
    `templates:${projectId}`,
  );
  const registry = useLoad(async () => (projectId ? usableVersions(projectId) : []), `versions:${projectId}`);
  const choices = versionChoices(registry.data ?? [], CAUSAL_LM_BASE, "base_version");
  const dataset = datasets.data?.find((d) => String(d.id) === form.dataset);



  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const built = buildCreateBody(form);
    if (built.errors) return show(built.errors);
    setSending(true);
    setErrors({});
    try {
      onCreated(await evalApi.create(built.project, built.body));
    } catch (error) {
      setSending(false);
      show(mapCreateErrors(error));
    }
  };

  const fieldKeys = Object.keys(errors).filter((k) => k !== "");
  const general = errors[""] ?? (fieldKeys.length ? `Not created: see ${fieldKeys.length === 1 ? "the error at" : "the errors at"} ${fieldKeys.join(", ")}.` : "");

  return (
    <form ref={formRef} className="card form start-run new-eval" onSubmit={submit} aria-label="New evaluation" noValidate>
      <h2>New evaluation</h2>
      <p className="muted small">
        Each version answers the same prompts once; labelers then see every pair of answers blind, in a random order. The evaluation gets its own project
        with the source project’s members, criteria and instructions.
      </p>
      <div className="grid-3">
        <Field label="Source project" error={errors.project} hint="Its prompts, members and criteria; you are an admin of it.">
          <select
            value={form.project}
            onChange={(e) => {
              set("project", e.target.value);
              setForm((current) => ({ ...current, dataset: "", template: "", versions: [], round: "" }));
            }}
          >
            <option value="">Choose a project…</option>
            {projects.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </Field>
        <Field
          label="Dataset"
          error={errors.dataset ?? (datasets.error ? errorText(datasets.error) : undefined)}
          hint={dataset ? splitHint(dataset) : projectId && datasets.data?.length === 0 ? "This project has no dataset: import one first." : "The prompts come from its rows."}
        >
          <select value={form.dataset} onChange={(e) => set("dataset", e.target.value)} disabled={!projectId}>
            <option value="">Choose a dataset…</option>
            {(datasets.data ?? []).map((d) => (
              <option key={d.id} value={d.id}>
                {d.name || d.source_filename} ({d.row_count.toLocaleString()} rows)
              </option>
            ))}
          </select>
        </Field>
        <Field label="Name" error={errors.name} hint="Optional, e.g. “v2 vs v3”.">
          <input value={form.name} onChange={(e) => set("name", e.target.value)} />
        </Field>
        <Field label="Split" error={errors.split} hint="Rows of this split only.">
          <select value={form.split} onChange={(e) => set("split", e.target.value as SplitChoice)}>
            {SPLITS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Prompt template" error={errors.template} hint="Renders each row into the prompt the versions answer.">
          <select value={form.template} onChange={(e) => set("template", e.target.value)} disabled={!projectId}>
            <option value="">Project default</option>
            {(templates.data ?? []).map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
                {t.is_default ? " (default)" : ""}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Limit" error={errors.limit} hint={`At most this many prompts (1..${MAX_LIMIT}).`}>
          <input inputMode="numeric" className="narrow" value={form.limit} placeholder={String(DEFAULT_LIMIT)} onChange={(e) => set("limit", e.target.value)} />
        </Field>
        <Field label="Seed" error={errors.seed} hint="Optional: fixes the sampling and the A/B order.">
          <input inputMode="numeric" className="narrow" value={form.seed} placeholder="random" onChange={(e) => set("seed", e.target.value)} />
        </Field>
        <RoundField
          projectId={projectId}
          value={form.round}
          onChange={(value) => set("round", value)}
          error={errors.round}
          hint="Optional: the round of the loop this evaluation judges; its win rate shows on the rounds page."
        />
      </div>
      <VersionPicker
        choices={choices}
        loading={registry.loading && !!projectId}
        chosen={form.versions}
        error={errors.versions ?? (registry.error ? errorText(registry.error) : undefined)}
        onChange={(versions) => set("versions", versions)}
        projectChosen={!!projectId}
      />
      <GenerationFields values={form} error={errors.generation} onChange={(key, value) => set(key, value, "generation")} />
      {general && (
        <p className="error" role="alert" data-testid="new-eval-error">
          {general}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={sending}>
          {sending ? "Creating…" : "Create evaluation"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function splitHint(dataset: Dataset): string {
  const counts = Object.entries(dataset.split_counts ?? {}).map(([split, n]) => `${split} ${n.toLocaleString()}`);
  return counts.length ? `Rows per split: ${counts.join(" · ")}.` : "The prompts come from its rows.";
}

type PickerProps = {
  choices: { id: number; label: string }[];
  loading: boolean;
  chosen: string[];
  error?: string;
  onChange: (versions: string[]) => void;
  projectChosen: boolean;
};

function VersionPicker({ choices, loading, chosen, error, onChange, projectChosen }: PickerProps) {
  const noteId = `${useId()}-note`;
  const note = !projectChosen
    ? "Choose the source project first: the versions it may use are listed."
    : loading
      ? "Loading the registry…"
      : choices.length === 0
        ? "No registered causal LM this project may use."
        : `${MIN_VERSIONS} to ${MAX_VERSIONS} versions; ${chosen.length} chosen.`;
  return (
    <fieldset className={`plain field version-picker${error ? " invalid" : ""}`} aria-describedby={noteId} aria-invalid={error ? true : undefined} tabIndex={error ? -1 : undefined}>
      <legend className="field-label">Versions to compare</legend>
      <div className="version-choices">
        {choices.map((c) => (
          <label key={c.id} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(String(c.id))}
              onChange={(e) => onChange(e.target.checked ? [...chosen, String(c.id)] : chosen.filter((id) => id !== String(c.id)))}
            />{" "}
            {c.label}
          </label>
        ))}
      </div>
      <FieldNote id={noteId} error={error} hint={note} />
    </fieldset>
  );
}
