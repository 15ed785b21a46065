/**
 * Start the next round (POST /api/projects/{id}/rounds/): the version that generates (a registered
 * causal LM this project may use, or a model and one of its aliases, e.g. candidate), the dataset
 * whose rows with no comparison yet are the prompts, split and limit, how many of the previous RLHF
 * run's best and worst samples go back to labelers, a note. A 400 puts each error at its field
 * (startRound.ts maps it); a 201 hands the new round to the page.
 */
import { useEffect, useId, useState, type FormEvent } from "react";
import type { Dataset } from "../admin/types";
import { api, type Page } from "../api";
import { usableVersions } from "../evals/evalApi";
import { CAUSAL_LM_BASE, versionChoices } from "../runs/startRun";
import { Field, GenerationFields } from "../ui/components";
import { errorText } from "../ui/format";
import { useFormState, useLoad } from "../ui/hooks";
import { nextBaseVersion, roundName, sortRounds } from "./rounds";
import { roundsApi } from "./roundsApi";
import {
  buildRoundBody,
  DEFAULT_GUARD_SAMPLES,
  EMPTY_ROUND_FORM,
  generalError,
  mapRoundErrors,
  MAX_GUARD_SAMPLES,
  MAX_LIMIT,
  MAX_NOTE,
  type RoundForm,
  type SplitChoice,
  type VersionSource,
} from "./startRound";
import type { Round } from "./types";

const SPLITS: { value: SplitChoice; label: string }[] = [
  { value: "all", label: "every split (default)" },
  { value: "train", label: "train" },
  { value: "eval", label: "eval" },
  { value: "test", label: "test" },
];

type Props = { projectId: number; rounds: Round[]; onStarted: (round: Round) => void; onCancel: () => void };

export function StartRoundForm({ projectId, rounds, onStarted, onCancel }: Props) {
  const { form, setForm, errors, setErrors, set, show, formRef } = useFormState<RoundForm>(EMPTY_ROUND_FORM);
  const [sending, setSending] = useState(false);
  const aliasList = `${useId()}-aliases`;
  const datasets = useLoad(async () => (await api.get<Page<Dataset>>(`projects/${projectId}/datasets/`, { limit: 200 })).results, `datasets:${projectId}`);
  const registry = useLoad(() => usableVersions(projectId), `versions:${projectId}`);
  const choices = versionChoices(registry.data ?? [], CAUSAL_LM_BASE, "base_version");
  const models = (registry.data ?? []).map((r) => r.model);
  const model = models.find((m) => String(m.id) === form.model);
  const latest = sortRounds(rounds).at(-1);

  // Preselect what the loop goes on from: the version the latest round made (else its base), the only dataset.
  const suggested = nextBaseVersion(rounds, choices);
  useEffect(() => {
    if (suggested !== null) setForm((f) => (f.version ? f : { ...f, version: String(suggested) }));
  }, [suggested]);
  const onlyDataset = datasets.data?.length === 1 ? datasets.data[0].id : null;
  useEffect(() => {
    if (onlyDataset !== null) setForm((f) => (f.dataset ? f : { ...f, dataset: String(onlyDataset) }));
  }, [onlyDataset]);

  const setSource = (source: VersionSource) => {
    setForm((current) => ({ ...current, source }));
    setErrors({});
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const built = buildRoundBody(form);
    if (built.errors) return show(built.errors as Record<string, string>);
    setSending(true);
    setErrors({});
    try {
      onStarted(await roundsApi.start(projectId, built.body));
    } catch (error) {
      setSending(false);
      show(mapRoundErrors(error, form.source));
    }
  };

  const general = generalError(errors);
  const next = (latest?.number ?? 0) + 1;

  return (
    <form ref={formRef} className="card form start-run start-round" onSubmit={submit} aria-label="Start next round" noValidate>
      <h2>Start round {next}</h2>
      <p className="muted small">
        The version answers the dataset’s rows that have no comparison yet; labelers then rank the answers in this project.
        {latest ? ` Round ${latest.number}’s RLHF samples go back to them too.` : " This is the first round: there is nothing to put back yet."}
      </p>
      <fieldset className="plain version-source">
        <legend className="field-label">The version that generates</legend>
        <label className="check">
          <input type="radio" name="source" checked={form.source === "version"} onChange={() => setSource("version")} /> A registered version
        </label>
        <label className="check">
          <input type="radio" name="source" checked={form.source === "alias"} onChange={() => setSource("alias")} /> A model and one of its aliases
        </label>
      </fieldset>
      <div className="grid-3">
        {form.source === "version" ? (
          <Field
            label="Version"
            error={errors.version ?? (registry.error ? errorText(registry.error) : undefined)}
            hint={registry.loading ? "Loading the registry…" : choices.length === 0 ? "No registered causal LM this project may use." : suggested !== null ? `Preselected: what ${latest ? roundName(latest) : "the last round"} made or started from.` : "A causal LM of this project, or shared."}
          >
            <select value={form.version} onChange={(e) => set("version", e.target.value)}>
              <option value="">Choose a version…</option>
              {choices.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.label}
                </option>
              ))}
            </select>
          </Field>
        ) : (
          <>
            <Field label="Model" error={errors.model} hint="A causal LM this project may use.">
              <select value={form.model} onChange={(e) => set("model", e.target.value)}>
                <option value="">Choose a model…</option>
                {models.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.name}
                  </option>
                ))}
              </select>
            </Field>
            <Field
              label="Alias"
              error={errors.alias}
              hint={model && Object.keys(model.aliases ?? {}).length ? `Its aliases: ${Object.keys(model.aliases).join(", ")}.` : "e.g. candidate"}
            >
              <input value={form.alias} list={aliasList} onChange={(e) => set("alias", e.target.value)} autoComplete="off" />
            </Field>
            <datalist id={aliasList}>
              {Object.keys(model?.aliases ?? {}).map((name) => (
                <option key={name} value={name} />
              ))}
            </datalist>
          </>
        )}
        <Field
          label="Dataset"
          error={errors.dataset ?? (datasets.error ? errorText(datasets.error) : undefined)}
          hint={datasets.data?.length === 0 ? "This project has no dataset: import one first." : "Its rows with no comparison yet are the prompts."}
        >
          <select value={form.dataset} onChange={(e) => set("dataset", e.target.value)}>
            <option value="">Choose a dataset…</option>
            {(datasets.data ?? []).map((d) => (
              <option key={d.id} value={d.id}>
                {d.name || d.source_filename} ({d.row_count.toLocaleString()} rows)
              </option>
            ))}
          </select>
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
        <Field label="Limit" error={errors.limit} hint={`At most this many prompts (1..${MAX_LIMIT.toLocaleString()}); empty: all.`}>
          <input inputMode="numeric" className="narrow" value={form.limit} placeholder="all" onChange={(e) => set("limit", e.target.value)} />
        </Field>
        <Field
          label="Guard samples"
          error={errors.guard_samples}
          hint={`Of the previous RLHF run: this many best- and worst-scored, back to labelers (0..${MAX_GUARD_SAMPLES}).`}
        >
          <input inputMode="numeric" className="narrow" value={form.guardSamples} placeholder={String(DEFAULT_GUARD_SAMPLES)} onChange={(e) => set("guardSamples", e.target.value, "guard_samples")} />
        </Field>
      </div>
      <GenerationFields values={form} legend="Generation (optional: the project’s generation settings otherwise)" error={errors.generation} onChange={(key, value) => set(key, value, "generation")} />
      <Field label="Note" error={errors.note} hint={`Optional, at most ${MAX_NOTE} characters: what this round tries.`}>
        <textarea rows={2} value={form.note} onChange={(e) => set("note", e.target.value)} />
      </Field>
      {general && (
        <p className="error" role="alert" data-testid="round-form-error">
          {general}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={sending}>
          {sending ? "Starting…" : "Start round"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
