/** The project's constitution: the principles that drive critique/revision (supervised CAI) and the
 * AI labeler's choice questions (RL from AI feedback). Versioned: every save adds the next version,
 * older ones stay readable. Members read; admins edit a draft and save it as a new version. */
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { constitutionApi, type Constitution, type Project } from "../api";
import { Badge, ErrorNote, Field, ReadOnlyNote } from "../ui/components";
import { errorText, fieldErrors, formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import type { TabProps } from "./Console";
import {
  addPrinciple,
  draftChanged,
  draftOf,
  errorsByUid,
  movePrinciple,
  principleErrors,
  principlesOf,
  removePrinciple,
  updatePrinciple,
  type CardErrors,
  type DraftPrinciple,
  type PrincipleField,
} from "./constitution";

const LABELS: Record<PrincipleField, string> = {
  key: "Key",
  name: "Name",
  critique_request: "Critique request",
  revision_request: "Revision request",
  choice_question: "Choice question",
};

const HINTS: Record<PrincipleField, string> = {
  key: "Lowercase letters, digits, - and _; unique",
  name: "Shown in reports",
  critique_request: "Asks the model to critique its own answer under this principle",
  revision_request: "Asks the model to rewrite its answer after the critique",
  choice_question: "The AI labeler's question when it compares two answers",
};

export function ConstitutionTab({ project, canEdit }: TabProps) {
  const versions = useLoad(() => constitutionApi.list(project.id), String(project.id));
  const [viewing, setViewing] = useState<number | null>(null);
  const [savedVersion, setSavedVersion] = useState<number | null>(null);
  const pickerId = useId();
  const list = versions.data?.results ?? [];
  const newest = list[0] ?? null;
  const shown = list.find((v) => v.version === viewing) ?? newest;

  return (
    <div className="stack constitution">
      <section className="card" aria-label="Constitution versions">
        <div className="editor-head">
          <h2>Constitution</h2>
          {list.length > 0 && (
            <span className="inline-field">
              <label htmlFor={pickerId}>Version</label>
              <select id={pickerId} value={shown?.version ?? ""} onChange={(e) => setViewing(Number(e.target.value))} data-testid="version-picker">
                {list.map((v, i) => (
                  <option key={v.id} value={v.version}>
                    v{v.version}
                    {i === 0 ? " (newest)" : ""}
                  </option>
                ))}
              </select>
            </span>
          )}
        </div>
        <p className="muted small">
          Each principle has a critique request and a revision request (the supervised stage: answer, critique, revision) and a choice
          question (the AI labeler of the RL stage). Every save adds a new version; runs record the version they used.
        </p>
        <ErrorNote error={versions.error} />
        {versions.loading && !versions.data && <p role="status">Loading the constitution…</p>}
        {versions.data && !newest && (
          <p role="status">This project has no constitution yet.{canEdit ? " Start one from the shipped default below." : ""}</p>
        )}
        {shown && <VersionView constitution={shown} newest={shown.version === newest?.version} />}
        {versions.data && versions.data.count > list.length && (
          <p className="muted small">The {list.length} newest of {versions.data.count} versions are listed.</p>
        )}
      </section>
      {!canEdit && <ReadOnlyNote canEdit={canEdit} />}
      {canEdit && versions.data && (
        <Editor
          key={newest?.id ?? "none"}
          project={project}
          newest={newest}
          savedVersion={savedVersion}
          onSaved={(created) => {
            setSavedVersion(created.version);
            setViewing(null);
            void versions.reload();
          }}
        />
      )}
    </div>
  );
}

function VersionView({ constitution, newest }: { constitution: Constitution; newest: boolean }) {
  return (
    <div className="constitution-version">
      <h3>
        <span data-testid="constitution-version">Version {constitution.version}</span>{" "}
        {newest ? <Badge tone="good">newest</Badge> : <Badge tone="plain">older version, read-only</Badge>}
      </h3>
      <p className="muted small">
        Saved {formatWhen(constitution.created_at)} by {constitution.created_by ?? "(system)"} · {constitution.principles.length}{" "}
        {constitution.principles.length === 1 ? "principle" : "principles"}
      </p>
      {constitution.note && <p className="constitution-note">{constitution.note}</p>}
      <ol className="principle-list">
        {constitution.principles.map((p) => (
          <li key={p.key}>
            <h4>
              {p.name} <code>{p.key}</code>
            </h4>
            <dl>
              <dt>Critique request</dt>
              <dd>{p.critique_request}</dd>
              <dt>Revision request</dt>
              <dd>{p.revision_request}</dd>
              <dt>Choice question</dt>
              <dd>{p.choice_question}</dd>
            </dl>
          </li>
        ))}
      </ol>
    </div>
  );
}

/** Where focus goes after the draft changes shape: a card's first input, or the Add button. */
type FocusTarget = { uid: number } | "add" | null;

function Editor({ project, newest, savedVersion, onSaved }: { project: Project; newest: Constitution | null; savedVersion: number | null; onSaved: (created: Constitution) => void }) {
  const [draft, setDraft] = useState<DraftPrinciple[]>(() => (newest ? draftOf(newest.principles) : []));
  const [note, setNote] = useState("");
  const [cardErrors, setCardErrors] = useState<Record<number, CardErrors>>({});
  const [formErrors, setFormErrors] = useState<{ list: string; other: string; note: string }>({ list: "", other: "", note: "" });
  const [status, setStatus] = useState<"idle" | "saving" | "loading-default" | "error">("idle");
  const [showSaved, setShowSaved] = useState(savedVersion !== null);
  const form = useRef<HTMLFormElement>(null);
  const focusNext = useRef<FocusTarget>(null);
  const focusInvalid = useRef(false);
  const dirty = draftChanged(draft, newest?.principles ?? null);
  const next = (newest?.version ?? 0) + 1;

  useEffect(() => {
    const target = focusNext.current;
    focusNext.current = null;
    if (!target || !form.current) return;
    const element =
      target === "add"
        ? form.current.querySelector<HTMLElement>("[data-add-principle]")
        : form.current.querySelector<HTMLElement>(`[data-uid="${target.uid}"] input`);
    element?.focus();
  }, [draft]);

  useEffect(() => {
    if (!focusInvalid.current) return;
    focusInvalid.current = false;
    form.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus();
  }, [cardErrors]);

  const change = (nextDraft: DraftPrinciple[], focus: FocusTarget = null) => {
    focusNext.current = focus;
    setDraft(nextDraft);
    setShowSaved(false);
    if (status === "error") setStatus("idle");
  };

  const edit = (index: number, field: PrincipleField, value: string) => {
    const uid = draft[index].uid;
    change(updatePrinciple(draft, index, field, value));
    if (cardErrors[uid]?.[field]) setCardErrors((all) => ({ ...all, [uid]: { ...all[uid], [field]: undefined } }));
  };

  const remove = (index: number) => {
    const p = draft[index];
    if ((p.key || p.name || p.critique_request) && !window.confirm(`Remove principle ${index + 1}${p.name ? ` (“${p.name}”)` : ""} from the draft?`)) return;
    const rest = removePrinciple(draft, index);
    const neighbour = rest[index] ?? rest[index - 1];
    change(rest, neighbour ? { uid: neighbour.uid } : "add");
  };

  const move = (index: number, delta: number) => {
    if (index + delta < 0 || index + delta >= draft.length) return;
    change(movePrinciple(draft, index, delta));
  };

  const add = () => {
    const grown = addPrinciple(draft);
    change(grown, { uid: grown[grown.length - 1].uid });
  };

  const startFromDefault = async () => {
    if (draft.length > 0 && dirty && !window.confirm("Replace the draft with the shipped default principles? Unsaved edits are lost.")) return;
    setStatus("loading-default");
    try {
      const answer = await constitutionApi.default(project.id);
      const fresh = draftOf(answer.principles);
      setCardErrors({});
      setFormErrors({ list: "", other: "", note: "" });
      setStatus("idle");
      change(fresh, fresh[0] ? { uid: fresh[0].uid } : null);
    } catch (error) {
      setFormErrors({ list: "", other: `Could not load the default: ${errorText(error)}`, note: "" });
      setStatus("error");
    }
  };

  const discard = () => {
    if (!newest || !window.confirm(`Discard the draft and start again from version ${newest.version}?`)) return;
    setCardErrors({});
    setFormErrors({ list: "", other: "", note: "" });
    change(draftOf(newest.principles));
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (!dirty || status === "saving") return;
    setStatus("saving");
    setCardErrors({});
    setFormErrors({ list: "", other: "", note: "" });
    try {
      const created = await constitutionApi.create(project.id, { principles: principlesOf(draft), note: note.trim() });
      setStatus("idle");
      onSaved(created);
    } catch (error) {
      const { note: noteError = "", ...rest } = fieldErrors(error);
      const split = principleErrors(rest);
      focusInvalid.current = true;
      setCardErrors(errorsByUid(draft, split.cards));
      setFormErrors({ list: split.list, other: split.other, note: noteError });
      setStatus("error");
    }
  };

  const busy = status === "saving" || status === "loading-default";
  return (
    <form className="card form constitution-editor" onSubmit={save} aria-label="Constitution editor" ref={form}>
      <div className="editor-head">
        <h2>{newest ? `Edit (saves as version ${next})` : "Write the first version"}</h2>
        <span className={`save-state ${status === "error" ? "error" : ""}`} role="status">
          {status === "saving"
            ? "Saving…"
            : status === "loading-default"
              ? "Loading the default…"
              : status === "error"
                ? "Not saved: see the errors below"
                : showSaved && savedVersion !== null && !dirty
                  ? `Saved as version ${savedVersion}.`
                  : dirty
                    ? "Unsaved changes"
                    : "No changes"}
        </span>
      </div>
      <div className="actions top">
        <button type="button" className={draft.length === 0 ? undefined : "secondary"} onClick={() => void startFromDefault()} disabled={busy}>
          {draft.length === 0 ? "Start from the default" : "Reset the draft to the default"}
        </button>
        {newest && dirty && (
          <button type="button" className="secondary" onClick={discard} disabled={busy}>
            Discard changes
          </button>
        )}
      </div>
      {formErrors.list && (
        <p className="error" role="alert">
          {formErrors.list}
        </p>
      )}
      {draft.length === 0 && <p className="muted">The draft is empty: start from the default, or add principles one by one.</p>}
      <fieldset disabled={busy} className="principle-cards">
        {draft.map((p, index) => (
          <PrincipleCard
            key={p.uid}
            principle={p}
            index={index}
            count={draft.length}
            errors={cardErrors[p.uid] ?? {}}
            onEdit={(field, value) => edit(index, field, value)}
            onMove={(delta) => move(index, delta)}
            onRemove={() => remove(index)}
          />
        ))}
        <div>
          <button type="button" className="secondary" onClick={add} data-add-principle>
            Add a principle
          </button>
        </div>
        <Field label="Note (what changed)" error={formErrors.note} hint="Optional; shown with the version">
          <input value={note} maxLength={500} onChange={(e) => (setNote(e.target.value), setShowSaved(false))} />
        </Field>
      </fieldset>
      {formErrors.other && (
        <p className="error" role="alert">
          {formErrors.other}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={!dirty || busy}>
          {status === "saving" ? "Saving…" : `Save as version ${next}`}
        </button>
      </div>
    </form>
  );
}

function PrincipleCard({
  principle,
  index,
  count,
  errors,
  onEdit,
  onMove,
  onRemove,
}: {
  principle: DraftPrinciple;
  index: number;
  count: number;
  errors: CardErrors;
  onEdit: (field: PrincipleField, value: string) => void;
  onMove: (delta: number) => void;
  onRemove: () => void;
}) {
  const n = index + 1;
  const first = index === 0;
  const last = index === count - 1;
  const text = (field: PrincipleField) => (
    <Field label={LABELS[field]} error={errors[field]} hint={HINTS[field]}>
      <textarea rows={3} value={principle[field]} onChange={(e) => onEdit(field, e.target.value)} />
    </Field>
  );
  return (
    <fieldset className={`principle-card${Object.values(errors).some(Boolean) ? " invalid" : ""}`} data-uid={principle.uid}>
      <legend>Principle {n}</legend>
      <div className="principle-tools">
        <button type="button" className="secondary small-button" aria-label={`Move principle ${n} up`} aria-disabled={first} onClick={() => onMove(-1)}>
          ↑ Up
        </button>
        <button type="button" className="secondary small-button" aria-label={`Move principle ${n} down`} aria-disabled={last} onClick={() => onMove(1)}>
          ↓ Down
        </button>
        <button type="button" className="secondary danger small-button" aria-label={`Remove principle ${n}`} onClick={onRemove}>
          Remove
        </button>
      </div>
      {errors[""] && (
        <p className="field-error" role="alert">
          {errors[""]}
        </p>
      )}
      <div className="row">
        <Field label={LABELS.key} error={errors.key} hint={HINTS.key}>
          <input className="mono" value={principle.key} onChange={(e) => onEdit("key", e.target.value)} spellCheck={false} />
        </Field>
        <Field label={LABELS.name} error={errors.name} hint={HINTS.name}>
          <input value={principle.name} onChange={(e) => onEdit("name", e.target.value)} />
        </Field>
      </div>
      {text("critique_request")}
      {text("revision_request")}
      {text("choice_question")}
    </fieldset>
  );
}
