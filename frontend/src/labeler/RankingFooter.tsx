/** Under the order board: the comment, Undo / Clear / Skip / Submit, what is missing, the status line and errors. */
import type { RefObject } from "react";
import { keepFocus } from "./CompletionCard";
import type { Busy } from "./queue";
import { isComplete, missingSummary, type RankingState } from "./ranking";

type Props = {
  ranking: RankingState;
  names: string[];
  comment: string;
  onComment: (value: string) => void;
  commentBox: RefObject<HTMLTextAreaElement | null>;
  busy: Busy;
  skipArmed: boolean;
  status: string;
  error: string;
  onUndo: () => void;
  onClear: () => void;
  onSkip: () => void;
  onSubmit: () => void;
};

export function RankingFooter({ ranking, names, comment, onComment, commentBox, busy, skipArmed, status, error, onUndo, onClear, onSkip, onSubmit }: Props) {
  const complete = isComplete(ranking);
  const disabled = busy !== null;
  return (
    <div className="lw-footer">
      <label className="lw-comment">
        <span className="visually-hidden">Comment (optional)</span>
        <textarea
          ref={commentBox}
          rows={1}
          value={comment}
          placeholder="Comment (optional) — press c"
          onChange={(event) => onComment(event.target.value)}
          disabled={disabled}
          aria-label="Comment (optional)"
        />
      </label>
      <div className="lw-actions">
        <button type="button" className="secondary" onMouseDown={keepFocus} onClick={onUndo} disabled={disabled || !ranking.history.length} title="Undo (u)">
          Undo
        </button>
        <button type="button" className="secondary" onMouseDown={keepFocus} onClick={onClear} disabled={disabled} title="Clear this order">
          Clear
        </button>
        <button
          type="button"
          className={`secondary${skipArmed ? " lw-danger" : ""}`}
          onClick={onSkip}
          disabled={disabled}
          title="Skip this comparison (s s)"
        >
          {skipArmed ? "Confirm skip" : "Skip"}
        </button>
        <button type="button" className="lw-submit" onClick={onSubmit} disabled={disabled || !complete} title="Submit (Enter)">
          {busy === "submit" ? "Saving…" : busy === "next" ? "Loading…" : "Submit"}
        </button>
      </div>
      <div className="lw-messages">
        <p className={`lw-hint${complete ? " ok" : ""}`}>
          {complete ? "Ready — press Enter to submit." : missingSummary(ranking, names)}
        </p>
        <p className="lw-status" role="status" aria-live="polite" data-testid="status">
          {status}
        </p>
      </div>
      {error && (
        <p className="error lw-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
