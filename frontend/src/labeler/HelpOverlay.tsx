import { useEffect, useRef, type KeyboardEvent } from "react";
import { FOCUSABLE, trapTarget } from "./focusTrap";
import { KEY_HELP } from "./ranking";

/**
 * The `?` overlay: the whole key map, and the mouse's ways. A modal dialog: focus moves into it on
 * opening, Tab and Shift-Tab cycle inside it, Esc (or ?, see Workspace) closes it and focus goes back
 * to where it was.
 */
export function HelpOverlay({ k, onClose }: { k: number; onClose: () => void }) {
  const dialog = useRef<HTMLDivElement>(null);
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    close.current?.focus();
    // Focus that lands outside (a click elsewhere, a screen reader's jump) is brought back in.
    const keepInside = (event: FocusEvent) => {
      const root = dialog.current;
      if (root && event.target instanceof Node && !root.contains(event.target)) close.current?.focus();
    };
    document.addEventListener("focusin", keepInside);
    return () => {
      document.removeEventListener("focusin", keepInside);
      previous?.focus?.();
    };
  }, []);

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    if (event.key === "Escape") {
      event.preventDefault();
      onClose();
      return;
    }
    if (event.key !== "Tab" || !dialog.current) return;
    const items = Array.from(dialog.current.querySelectorAll<HTMLElement>(FOCUSABLE));
    const active = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const target = items.length ? trapTarget(items, active, event.shiftKey) : dialog.current;
    if (target) {
      event.preventDefault();
      target.focus();
    }
  };

  const example = Array.from({ length: Math.min(k, 3) }, (_, i) => String(i + 1));
  return (
    <div className="lw-overlay" onMouseDown={(event) => event.target === event.currentTarget && onClose()}>
      <div className="lw-dialog" role="dialog" aria-modal="true" aria-labelledby="lw-help-title" ref={dialog} tabIndex={-1} onKeyDown={onKeyDown}>
        <h2 id="lw-help-title">Keyboard shortcuts</h2>
        <p>
          Rank in reading order. The <b>selected</b> completion is outlined; type its rank and the next one without a mark
          is selected. So for three completions, <kbd>2</kbd> <kbd>1</kbd> <kbd>3</kbd> <kbd>Enter</kbd> ranks A second, B
          first, C third and submits; <kbd>{example[0]}</kbd> <kbd>t</kbd> <kbd>f</kbd> <kbd>Enter</kbd> ties A and B
          first and marks C as F. Equal ranks tie; gaps are fine — only the order counts.
        </p>
        <table className="lw-keys">
          <tbody>
            {KEY_HELP.map((row) => (
              <tr key={row.action}>
                <th scope="row">
                  {row.keys.map((key, i) =>
                    key === "…" ? (
                      <span key={i}> … </span>
                    ) : (
                      <kbd key={i}>{key === "K" ? String(k) : key}</kbd>
                    ),
                  )}
                </th>
                <td>{row.action}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h3>With the mouse</h3>
        <p>
          Click a completion&apos;s rank buttons (<b>1</b>…<b>{k}</b>) or <b>F</b>; click a pressed button again to clear it.
          Or drag the letter chips into the order row, best on the left: dropping onto a rank that already holds a
          completion ties them, and dropping back on &ldquo;To rank&rdquo; clears it.
        </p>
        <p className="muted">Per-criterion projects rank once per criterion on the same screen: when one criterion is complete the keys move on to the next.</p>
        <div className="actions">
          <button ref={close} type="button" onClick={onClose}>
            Close (Esc)
          </button>
        </div>
      </div>
    </div>
  );
}
