/** The workspace's keyboard: one keydown listener on the window, routed by `routeKey` (keys.ts). */
import { useEffect, useRef, type RefObject } from "react";
import { routeKey } from "./keys";
import type { Command } from "./ranking";

type Options = {
  /** The workspace element: focus returns here when Esc leaves a text field. */
  rootRef: RefObject<HTMLElement | null>;
  helpOpen: boolean;
  closeHelp: () => void;
  k: number;
  run: (command: Command) => void;
};

export function useWindowKeys(options: Options) {
  // Registered once; the listener reads the latest options through this ref, never stale ones.
  const latest = useRef(options);
  latest.current = options;

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target instanceof HTMLElement ? event.target : null;
      const field = target?.closest("input, textarea, select, [contenteditable='true']") ?? null;
      const place = {
        inField: field !== null,
        fieldInWorkspace: field !== null && target!.closest(".lw") !== null,
        onButton: !!target?.closest("button, a, [role='button']"),
      };
      const { helpOpen, k, rootRef, closeHelp, run } = latest.current;
      const route = routeKey(event, place, helpOpen, k);
      if (!route) return;
      event.preventDefault();
      if (route.type === "leaveField") {
        target!.blur();
        rootRef.current?.focus();
      } else if (route.type === "closeHelp") closeHelp();
      else run(route.command);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}
