import { useState, type FormEvent } from "react";
import { api, type Criterion } from "../api";
import { ErrorNote, Field, ReadOnlyNote } from "../ui/components";
import { errorText, fieldErrors } from "../ui/format";
import { useLoad } from "../ui/hooks";
import type { TabProps } from "./Console";

export function CriteriaTab({ project, canEdit }: TabProps) {
  const criteria = useLoad(() => api.get<Criterion[]>(`projects/${project.id}/criteria/`), String(project.id));
  return (
    <div className="stack">
      <section className="card">
        <h2>Alignment criteria</h2>
        <p className="muted">
          {project.rank_per_criterion
            ? "Labelers rank once per criterion; each criterion yields its own preference data."
            : "This project ranks overall; criteria show as guidance. Turn on “Rank once per criterion” in Settings to rank per criterion."}
        </p>
        <ReadOnlyNote canEdit={canEdit} />
        <ErrorNote error={criteria.error} />
        {criteria.data?.length === 0 && <p>No criteria yet.</p>}
        {criteria.data?.map((c) => (
          <CriterionEditor key={c.id} projectId={project.id} criterion={c} canEdit={canEdit} onChange={() => void criteria.reload()} />
        ))}
      </section>
      {canEdit && <NewCriterion projectId={project.id} onCreated={() => void criteria.reload()} />}
    </div>
  );
}

function CriterionEditor({ projectId, criterion, canEdit, onChange }: { projectId: number; criterion: Criterion; canEdit: boolean; onChange: () => void }) {
  const [name, setName] = useState(criterion.name);
  const [instructions, setInstructions] = useState(criterion.instructions);
  const [position, setPosition] = useState(String(criterion.position));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const dirty = name !== criterion.name || instructions !== criterion.instructions || position !== String(criterion.position);

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setErrors({});
    try {
      await api.patch(`projects/${projectId}/criteria/${criterion.id}/`, { name, instructions, position: Number(position) });
      setSaved(true);
      onChange();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  const remove = async () => {
    if (!window.confirm(`Delete the criterion “${criterion.name}”?`)) return;
    try {
      await api.delete(`projects/${projectId}/criteria/${criterion.id}/`);
      onChange();
    } catch (error) {
      setErrors({ "": errorText(error) });
    }
  };

  return (
    <form className="criterion form" onSubmit={save} aria-label={`Criterion ${criterion.name}`}>
      <fieldset disabled={!canEdit}>
        <div className="row">
          <Field label="Name" error={errors.name}>
            <input value={name} onChange={(e) => (setName(e.target.value), setSaved(false))} />
          </Field>
          <Field label="Position" error={errors.position}>
            <input type="number" min={0} className="narrow" value={position} onChange={(e) => (setPosition(e.target.value), setSaved(false))} />
          </Field>
        </div>
        <Field label="Instructions for labelers" error={errors.instructions}>
          <textarea rows={3} value={instructions} onChange={(e) => (setInstructions(e.target.value), setSaved(false))} />
        </Field>
      </fieldset>
      {errors[""] && (
        <p className="error" role="alert">
          {errors[""]}
        </p>
      )}
      {canEdit && (
        <div className="actions">
          <button type="submit" disabled={!dirty}>
            Save
          </button>
          <button type="button" className="secondary danger" onClick={() => void remove()}>
            Delete
          </button>
          {saved && !dirty && <span className="ok">Saved.</span>}
        </div>
      )}
    </form>
  );
}

function NewCriterion({ projectId, onCreated }: { projectId: number; onCreated: () => void }) {
  const [name, setName] = useState("");
  const [instructions, setInstructions] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const create = async (event: FormEvent) => {
    event.preventDefault();
    setErrors({});
    try {
      await api.post(`projects/${projectId}/criteria/`, { name: name.trim(), instructions });
      setName("");
      setInstructions("");
      onCreated();
    } catch (error) {
      setErrors(fieldErrors(error));
    }
  };
  return (
    <form className="card form" onSubmit={create} aria-label="Add a criterion">
      <h3>Add a criterion</h3>
      <Field label="Name" error={errors.name} hint="e.g. helpfulness, harmlessness, honesty">
        <input value={name} onChange={(e) => setName(e.target.value)} required />
      </Field>
      <Field label="Instructions for labelers" error={errors.instructions}>
        <textarea rows={3} value={instructions} onChange={(e) => setInstructions(e.target.value)} />
      </Field>
      {errors[""] && (
        <p className="error" role="alert">
          {errors[""]}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={!name.trim()}>
          Add criterion
        </button>
      </div>
    </form>
  );
}
