/**
 * Parts the run page (RunPage.tsx) and the sweep page (sweeps/SweepPage.tsx) share: a fact of the
 * header's facts list, a JSON object shown under its title, and a Cancel button that asks first and
 * shows why a cancel was refused.
 */
import { useState, type ReactNode } from "react";
import { ApiError } from "../api";
import { errorText } from "../ui/format";

/** One fact of a header's `<dl className="run-facts">`. */
export function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

/**
 * A Cancel button: `question` confirmed, then `cancel()`; a 409 shows "Not cancelled: ...", any other
 * error its text. `label(sending)` words the button; `hidden` leaves it out unless an error shows.
 */
export function CancelAction({
  question,
  cancel,
  label,
  disabled,
  hidden = false,
}: {
  question: string;
  cancel: () => Promise<void>;
  label: (sending: boolean) => string;
  disabled: boolean;
  hidden?: boolean;
}) {
  const [sending, setSending] = useState(false);
  const [error, setError] = useState("");
  if (hidden && !error) return null;
  const run = async () => {
    if (!window.confirm(question)) return;
    setSending(true);
    setError("");
    try {
      await cancel();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 409 ? `Not cancelled: ${err.detail}` : errorText(err));
    } finally {
      setSending(false);
    }
  };
  return (
    <span className="run-cancel">
      <button type="button" className="secondary danger" onClick={() => void run()} disabled={sending || disabled}>
        {label(sending)}
      </button>
      {error && (
        <span className="error small" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

/** A JSON object under its title (a dash when it is empty). */
export function JsonBlock({ title, value }: { title: string; value: Record<string, unknown> }) {
  const empty = !value || Object.keys(value).length === 0;
  return (
    <div>
      <h3>{title}</h3>
      {empty ? <p className="muted">—</p> : <pre className="prompt run-json">{JSON.stringify(value, null, 2)}</pre>}
    </div>
  );
}
