import { useState, type FormEvent } from "react";
import { api, type Project } from "../api";
import { Field, ReadOnlyNote } from "../ui/components";
import { fieldErrors } from "../ui/format";
import type { TabProps } from "./Console";

type Draft = {
  name: string;
  instructions: string;
  completions_per_prompt: string;
  overlap: string;
  lease_seconds: string;
  gold_rate: string;
  ai_spot_check_rate: string;
  rank_per_criterion: boolean;
};

function draftOf(project: Project): Draft {
  return {
    name: project.name,
    instructions: project.instructions,
    completions_per_prompt: String(project.completions_per_prompt),
    overlap: String(project.overlap),
    lease_seconds: String(project.lease_seconds),
    gold_rate: String(project.gold_rate),
    ai_spot_check_rate: String(project.ai_spot_check_rate ?? ""),
    rank_per_criterion: project.rank_per_criterion,
  };
}

/** Numbers go to the server as typed (an empty box as null), so it is the server that says what is wrong. */
function asNumber(text: string): number | null | string {
  if (text.trim() === "") return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
}

export function SettingsTab({ project, canEdit, onProjectChange }: TabProps) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(project));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);

  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => {
    setDraft((d) => ({ ...d, [key]: value }));
    setSaved(false);
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    setErrors({});
    try {
      const updated = await api.patch<Project>(`projects/${project.id}/`, {
        name: draft.name,
        instructions: draft.instructions,
        completions_per_prompt: asNumber(draft.completions_per_prompt),
        overlap: asNumber(draft.overlap),
        lease_seconds: asNumber(draft.lease_seconds),
        gold_rate: asNumber(draft.gold_rate),
        ai_spot_check_rate: asNumber(draft.ai_spot_check_rate),
        rank_per_criterion: draft.rank_per_criterion,
      });
      onProjectChange(updated);
      setDraft(draftOf(updated));
      setSaved(true);
    } catch (error) {
      setErrors(fieldErrors(error));
    } finally {
      setSaving(false);
    }
  };

  return (
    <form className="card form" onSubmit={save} aria-label="Project settings">
      <h2>Settings</h2>
      <ReadOnlyNote canEdit={canEdit} />
      <fieldset disabled={!canEdit || saving}>
        <Field label="Name" error={errors.name}>
          <input value={draft.name} onChange={(e) => set("name", e.target.value)} />
        </Field>
        <Field label="Instructions for labelers (markdown)" error={errors.instructions}>
          <textarea rows={8} value={draft.instructions} onChange={(e) => set("instructions", e.target.value)} />
        </Field>
        <div className="grid-3">
          <Field label="Completions per prompt (K)" error={errors.completions_per_prompt} hint="2 to 9">
            <input type="number" value={draft.completions_per_prompt} onChange={(e) => set("completions_per_prompt", e.target.value)} />
          </Field>
          <Field label="Overlap (labelers per comparison)" error={errors.overlap}>
            <input type="number" value={draft.overlap} onChange={(e) => set("overlap", e.target.value)} />
          </Field>
          <Field label="Lease (seconds)" error={errors.lease_seconds} hint="How long a labeler holds a task">
            <input type="number" value={draft.lease_seconds} onChange={(e) => set("lease_seconds", e.target.value)} />
          </Field>
          <Field label="Gold rate" error={errors.gold_rate} hint="Share of tasks drawn from gold items, 0 to 1">
            <input type="number" step="0.01" value={draft.gold_rate} onChange={(e) => set("gold_rate", e.target.value)} />
          </Field>
          <Field
            label="AI spot-check rate"
            error={errors.ai_spot_check_rate}
            hint="Share of AI-labeled comparisons kept in the human queue for spot checks, 0 to 1"
          >
            <input type="number" step="0.01" min={0} max={1} value={draft.ai_spot_check_rate} onChange={(e) => set("ai_spot_check_rate", e.target.value)} />
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" checked={draft.rank_per_criterion} onChange={(e) => set("rank_per_criterion", e.target.checked)} />
          Rank once per criterion (each criterion yields its own preference data)
        </label>
        {errors.rank_per_criterion && <span className="field-error">{errors.rank_per_criterion}</span>}
      </fieldset>
      {errors[""] && (
        <p className="error" role="alert">
          {errors[""]}
        </p>
      )}
      {canEdit && (
        <div className="actions">
          <button type="submit" disabled={saving}>
            {saving ? "Saving…" : "Save settings"}
          </button>
          {saved && <span className="ok">Saved.</span>}
        </div>
      )}
    </form>
  );
}
