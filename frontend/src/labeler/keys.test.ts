import { describe, expect, it } from "vitest";
import { routeKey, type KeyPlace } from "./keys";

const body: KeyPlace = { inField: false, fieldInWorkspace: false, onButton: false };
const comment: KeyPlace = { inField: true, fieldInWorkspace: true, onButton: false };
const button: KeyPlace = { ...body, onButton: true };

describe("routeKey", () => {
  it("runs the command of a key pressed on the page", () => {
    expect(routeKey({ key: "2" }, body, false, 3)).toEqual({ type: "run", command: { type: "rank", rank: 2 } });
    expect(routeKey({ key: "Enter" }, body, false, 3)).toEqual({ type: "run", command: { type: "submit" } });
    expect(routeKey({ key: "?" }, body, false, 3)).toEqual({ type: "run", command: { type: "help" } });
  });

  it("leaves keys without a command, and ranks above K, to the browser", () => {
    expect(routeKey({ key: "q" }, body, false, 3)).toBeNull();
    expect(routeKey({ key: "4" }, body, false, 3)).toBeNull();
  });

  it("ignores keys already handled or still being composed", () => {
    expect(routeKey({ key: "1", defaultPrevented: true }, body, false, 3)).toBeNull();
    expect(routeKey({ key: "1", isComposing: true }, body, false, 3)).toBeNull();
  });

  it("lets a focused button answer Enter, but not the other keys", () => {
    expect(routeKey({ key: "Enter" }, button, false, 3)).toBeNull();
    expect(routeKey({ key: "1" }, button, false, 3)).toEqual({ type: "run", command: { type: "rank", rank: 1 } });
  });

  it("types into text fields: Esc leaves, Ctrl/Cmd+Enter submits from the workspace's own fields", () => {
    expect(routeKey({ key: "1" }, comment, false, 3)).toBeNull();
    expect(routeKey({ key: "Enter" }, comment, false, 3)).toBeNull();
    expect(routeKey({ key: "Escape" }, comment, false, 3)).toEqual({ type: "leaveField" });
    expect(routeKey({ key: "Enter", ctrlKey: true }, comment, false, 3)).toEqual({ type: "run", command: { type: "submit" } });
    expect(routeKey({ key: "Enter", metaKey: true }, comment, false, 3)).toEqual({ type: "run", command: { type: "submit" } });
    expect(routeKey({ key: "Enter", ctrlKey: true }, { ...comment, fieldInWorkspace: false }, false, 3)).toBeNull();
  });

  it("with the help open, only Esc and ? close it; nothing else runs", () => {
    expect(routeKey({ key: "Escape" }, body, true, 3)).toEqual({ type: "closeHelp" });
    expect(routeKey({ key: "?" }, body, true, 3)).toEqual({ type: "closeHelp" });
    expect(routeKey({ key: "1" }, body, true, 3)).toBeNull();
    expect(routeKey({ key: "Enter" }, body, true, 3)).toBeNull();
  });
});
