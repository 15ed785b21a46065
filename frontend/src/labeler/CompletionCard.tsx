import type { MouseEvent } from "react";
import { letter, markLabel, type Mark, type RankingAction } from "./ranking";

/** On mousedown: a mouse click must not move the focus onto the button, or a later Enter (submit)
 * would press that button again instead. Keyboard users still Tab to it and press it. */
export const keepFocus = (event: MouseEvent) => event.preventDefault();

type Props = {
  index: number;
  text: string;
  k: number;
  mark: Mark;
  selected: boolean;
  disabled: boolean;
  /** Per-criterion projects: every criterion's mark for this completion, for the summary line. */
  summary: { name: string; mark: Mark; active: boolean }[] | null;
  apply: (action: RankingAction) => void;
};

/** One completion, labelled with a letter; its rank buttons and F button change the active order. */
export function CompletionCard({ index, text, k, mark, selected, disabled, summary, apply }: Props) {
  const name = letter(index);
  const select = (event: MouseEvent) => {
    if ((event.target as HTMLElement).closest("button, a, textarea")) return;
    if (window.getSelection()?.toString()) return; // selecting text, not the card
    apply({ type: "select", index });
  };
  return (
    <section
      className={`lw-card${selected ? " selected" : ""}${mark === "F" ? " failed" : ""}`}
      aria-label={`Completion ${name}`}
      aria-current={selected ? "true" : undefined}
      data-testid={`completion-${name}`}
      onClick={select}
    >
      <header className="lw-card-head">
        <span className="lw-letter" aria-hidden="true">
          {name}
        </span>
        <span className={`lw-mark${mark === null ? " empty" : ""}`} data-testid={`mark-${name}`}>
          {mark === null ? "—" : mark === "F" ? "F" : `#${mark}`}
        </span>
        <span className="visually-hidden">Completion {name}: {markLabel(mark)}</span>
        {selected && <span className="lw-selected-tag">selected</span>}
      </header>
      {summary && (
        <p className="lw-summary">
          {summary.map((s) => (
            <span key={s.name} className={s.active ? "active" : undefined}>
              {s.name}: {s.mark === null ? "—" : s.mark}
            </span>
          ))}
        </p>
      )}
      <div className="lw-text" tabIndex={0} aria-label={`Text of completion ${name}`}>
        {text}
      </div>
      <div className="lw-rank-buttons" role="group" aria-label={`Rank completion ${name}`}>
        {Array.from({ length: k }, (_, r) => r + 1).map((rank) => (
          <button
            key={rank}
            type="button"
            className="lw-rank"
            aria-label={`Rank ${rank} for completion ${name}`}
            aria-pressed={mark === rank}
            disabled={disabled}
            onMouseDown={keepFocus}
            onClick={() => apply(mark === rank ? { type: "clear", index } : { type: "rank", rank, index })}
          >
            {rank}
          </button>
        ))}
        <button
          type="button"
          className="lw-rank lw-f"
          aria-label={`F for completion ${name}`}
          title="F: nonsense or off-task (instead of a rank)"
          aria-pressed={mark === "F"}
          disabled={disabled}
          onMouseDown={keepFocus}
          onClick={() => apply({ type: "fail", index })}
        >
          F
        </button>
      </div>
    </section>
  );
}
