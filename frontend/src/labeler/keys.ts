/**
 * Where a key press on the workspace's window goes, as a pure function (keys.test.ts); the listener
 * in useWindowKeys.ts only reads the DOM facts it needs and carries the answer out.
 */
import { commandForKey, type Command, type KeyLike } from "./ranking";

export type KeyEvent = KeyLike & { defaultPrevented?: boolean; isComposing?: boolean };

/** Where the key was pressed: in a text field (and is that inside the workspace?), or on a button or link. */
export type KeyPlace = { inField: boolean; fieldInWorkspace: boolean; onButton: boolean };

/**
 * `leaveField`: Esc in a text field returns to ranking; `closeHelp`: Esc or ? closes the help
 * overlay; `run`: the workspace command. Each of these takes the key (preventDefault); null leaves
 * it to the browser or the focused element.
 */
export type KeyRoute = { type: "leaveField" } | { type: "closeHelp" } | { type: "run"; command: Command } | null;

export function routeKey(event: KeyEvent, place: KeyPlace, helpOpen: boolean, k: number): KeyRoute {
  if (event.defaultPrevented || event.isComposing) return null;
  if (place.inField) {
    if (event.key === "Escape") return { type: "leaveField" };
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && place.fieldInWorkspace) return { type: "run", command: { type: "submit" } };
    return null;
  }
  if (helpOpen) return event.key === "Escape" || event.key === "?" ? { type: "closeHelp" } : null;
  const command = commandForKey(event, k);
  if (!command) return null;
  // A focused button or link answers Enter itself.
  if (command.type === "submit" && place.onButton) return null;
  return { type: "run", command };
}
