import { useState, type DragEvent } from "react";
import { board, letter, type Order, type RankingAction } from "./ranking";

type Props = {
  order: Order;
  k: number;
  texts: string[];
  selected: number;
  disabled: boolean;
  title: string;
  apply: (action: RankingAction) => void;
};

type Target = number | "F" | null;

const DRAG_TYPE = "text/plain";

function snippet(text: string, length: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > length ? flat.slice(0, length - 1) + "…" : flat;
}

/**
 * The mouse's way to order: a row of drop zones from best (1) to worst (K), then F. Drag a letter
 * chip onto a zone to give it that rank; dropping onto a zone that holds a completion ties them.
 * Dropping back on "To rank" clears the mark.
 */
export function OrderBoard({ order, k, texts, selected, disabled, title, apply }: Props) {
  const { byRank, failed, unmarked } = board(order, k);
  const [over, setOver] = useState<string | null>(null);
  const [dragging, setDragging] = useState<number | null>(null);

  const place = (index: number, target: Target) => {
    const mark = order.marks[index];
    if (target === null) {
      if (mark !== null) apply({ type: "clear", index });
    } else if (target === "F") {
      if (mark !== "F") apply({ type: "fail", index });
    } else if (mark !== target) {
      apply({ type: "rank", rank: target, index });
    }
  };

  const zone = (target: Target) => {
    const id = String(target);
    return {
      onDragOver: (event: DragEvent) => {
        if (disabled) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        if (over !== id) setOver(id);
      },
      onDragLeave: (event: DragEvent) => {
        if (!(event.currentTarget as HTMLElement).contains(event.relatedTarget as Node | null)) setOver(null);
      },
      onDrop: (event: DragEvent) => {
        event.preventDefault();
        setOver(null);
        setDragging(null);
        const index = Number(event.dataTransfer.getData(DRAG_TYPE));
        if (!disabled && Number.isInteger(index) && index >= 0 && index < k) place(index, target);
      },
    };
  };

  const chip = (index: number, long: boolean) => (
    <button
      key={index}
      type="button"
      draggable={!disabled}
      className={`lw-chip${index === selected ? " selected" : ""}${dragging === index ? " dragging" : ""}`}
      data-testid={`chip-${letter(index)}`}
      aria-label={`Completion ${letter(index)} — select it (or drag it onto a rank)`}
      title={snippet(texts[index] ?? "", 160)}
      onClick={() => apply({ type: "select", index })}
      onDragStart={(event) => {
        event.dataTransfer.setData(DRAG_TYPE, String(index));
        event.dataTransfer.effectAllowed = "move";
        setDragging(index);
      }}
      onDragEnd={() => {
        setDragging(null);
        setOver(null);
      }}
    >
      <b>{letter(index)}</b>
      {long && <span className="lw-chip-text">{snippet(texts[index] ?? "", 48)}</span>}
    </button>
  );

  return (
    <section className={`lw-board${dragging !== null ? " is-dragging" : ""}`} aria-label={title}>
      <h2 className="lw-board-title">
        {title} <span className="muted">— drag the letters, best on the left; drop on a taken rank to tie</span>
      </h2>
      <div className="lw-board-row">
        <div className={`lw-pool${over === "null" ? " over" : ""}`} data-testid="slot-none" {...zone(null)}>
          <span className="lw-slot-head">To rank</span>
          <div className="lw-slot-body">
            {unmarked.length ? unmarked.map((i) => chip(i, true)) : <span className="muted">all placed ✓</span>}
          </div>
        </div>
        <ol className="lw-slots">
          {byRank.map((indices, r) => (
            <li
              key={r}
              className={`lw-slot${over === String(r + 1) ? " over" : ""}${indices.length ? " filled" : ""}`}
              data-testid={`slot-${r + 1}`}
              aria-label={`Rank ${r + 1}${r === 0 ? " (best)" : r === k - 1 ? " (worst)" : ""}: ${
                indices.map(letter).join(", ") || "empty"
              }`}
              {...zone(r + 1)}
            >
              <span className="lw-slot-head">
                {r + 1}
                {r === 0 ? " best" : r === k - 1 ? " worst" : ""}
              </span>
              <div className="lw-slot-body">{indices.map((i) => chip(i, false))}</div>
            </li>
          ))}
          <li
            className={`lw-slot lw-slot-f${over === "F" ? " over" : ""}${failed.length ? " filled" : ""}`}
            data-testid="slot-F"
            aria-label={`F, nonsense or off-task: ${failed.map(letter).join(", ") || "empty"}`}
            {...zone("F")}
          >
            <span className="lw-slot-head">F</span>
            <div className="lw-slot-body">{failed.map((i) => chip(i, false))}</div>
          </li>
        </ol>
      </div>
    </section>
  );
}
