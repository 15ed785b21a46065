/** Keeping Tab inside a modal dialog: the pure part (which element gets focus), tested in focusTrap.test.ts. */

/** What Tab can reach inside a dialog, in document order. */
export const FOCUSABLE = [
  "a[href]",
  "button:not([disabled])",
  "input:not([disabled]):not([type='hidden'])",
  "select:not([disabled])",
  "textarea:not([disabled])",
  "[tabindex]:not([tabindex='-1'])",
].join(", ");

/**
 * Where Tab (Shift-Tab when `backwards`) must move focus so that it stays among `items`, or null
 * where the browser's own move already does. From the last item Tab wraps to the first and
 * Shift-Tab from the first to the last; from anywhere else in the dialog (the dialog itself, a
 * paragraph clicked) Tab goes to the first item and Shift-Tab to the last.
 */
export function trapTarget<T>(items: readonly T[], active: T | null, backwards: boolean): T | null {
  if (items.length === 0) return null;
  const index = active === null ? -1 : items.indexOf(active);
  if (index === -1) return backwards ? items[items.length - 1] : items[0];
  if (backwards && index === 0) return items[items.length - 1];
  if (!backwards && index === items.length - 1) return items[0];
  return null;
}
