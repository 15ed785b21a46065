/** Small building blocks of the UI's forms and tables, shared by the console, runs, rounds and evaluations. */
import { cloneElement, useId, type ReactElement, type ReactNode } from "react";
import { errorText, rowErrorPlace, type RowError } from "./format";

/**
 * A labelled form control with its hint or its server error (if any) right under it. The label is
 * tied to the control (id, htmlFor) and the hint/error to it by aria-describedby, so the control's
 * accessible name is just the label.
 */
export function Field({ label, error, hint, children }: { label: string; error?: string; hint?: ReactNode; children: ReactElement<Record<string, unknown>> }) {
  const id = useId();
  const noteId = `${id}-note`;
  const control = cloneElement(children, {
    id,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error || hint ? noteId : undefined,
  });
  return (
    <div className={`field${error ? " invalid" : ""}`}>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {control}
      <FieldNote id={noteId} error={error} hint={hint || undefined} />
    </div>
  );
}

/** A control's note (its `aria-describedby` target): the error when there is one, else the hint (none when absent). */
export function FieldNote({ id, error, hint }: { id: string; error?: string; hint?: ReactNode }) {
  if (error) {
    return (
      <span className="field-error" role="alert" id={id}>
        {error}
      </span>
    );
  }
  if (hint === undefined || hint === null || hint === false) return null;
  return (
    <span className="hint" id={id}>
      {hint}
    </span>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {errorText(error)}
    </p>
  );
}

export function ProgressBar({ fraction, label }: { fraction: number; label: string }) {
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
      <div className="progress-fill" style={{ width: `${percent}%` }} />
      <span className="progress-text">{percent}%</span>
    </div>
  );
}

/** The lines an import refused, each with its line, field and reason. */
export function RowErrorTable({ errors, title }: { errors: RowError[]; title: string }) {
  if (errors.length === 0) return null;
  return (
    <div className="row-errors" role="alert">
      <p className="error">
        <strong>{title}</strong> {errors.length === 1 ? `Problem at ${rowErrorPlace(errors[0])}.` : `${errors.length} problems.`}
      </p>
      <table className="table compact">
        <thead>
          <tr>
            <th>Line</th>
            <th>Field</th>
            <th>Problem</th>
          </tr>
        </thead>
        <tbody>
          {errors.map((e, i) => (
            <tr key={i}>
              <td>{e.line ?? "—"}</td>
              <td>{e.field ? <code>{e.field}</code> : "—"}</td>
              <td>{e.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Badge({ tone, children }: { tone: "good" | "bad" | "busy" | "plain"; children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

export function ReadOnlyNote({ canEdit }: { canEdit: boolean }) {
  if (canEdit) return null;
  return <p className="muted readonly-note">Read-only: only project admins change this.</p>;
}

/** Two optional generation overrides (max new tokens, temperature) with one server error under them. */
export function GenerationFields({ values, error, legend = "Generation (optional)", onChange }: { values: { maxNewTokens: string; temperature: string }; error?: string; legend?: string; onChange: (key: "maxNewTokens" | "temperature", value: string) => void }) {
  const noteId = `${useId()}-note`;
  const invalid = error ? true : undefined;
  const described = error ? noteId : undefined;
  return (
    <fieldset className={`plain field${error ? " invalid" : ""}`}>
      <legend className="field-label">{legend}</legend>
      <div className="row">
        <label className="check">
          Max new tokens{" "}
          <input inputMode="numeric" className="narrow" value={values.maxNewTokens} placeholder="default" aria-invalid={invalid} aria-describedby={described} onChange={(e) => onChange("maxNewTokens", e.target.value)} />
        </label>
        <label className="check">
          Temperature{" "}
          <input inputMode="decimal" className="narrow" value={values.temperature} placeholder="default" aria-invalid={invalid} aria-describedby={described} onChange={(e) => onChange("temperature", e.target.value)} />
        </label>
      </div>
      <FieldNote id={noteId} error={error} />
    </fieldset>
  );
}
