import { describe, expect, it } from "vitest";
import { trapTarget } from "./focusTrap";

describe("trapTarget", () => {
  const items = ["close", "link", "ok"];

  it("lets the browser move focus between items inside the dialog", () => {
    expect(trapTarget(items, "close", false)).toBeNull();
    expect(trapTarget(items, "link", false)).toBeNull();
    expect(trapTarget(items, "ok", true)).toBeNull();
    expect(trapTarget(items, "link", true)).toBeNull();
  });

  it("wraps Tab from the last item to the first, and Shift-Tab from the first to the last", () => {
    expect(trapTarget(items, "ok", false)).toBe("close");
    expect(trapTarget(items, "close", true)).toBe("ok");
  });

  it("brings focus from elsewhere back to the first (Tab) or last (Shift-Tab) item", () => {
    expect(trapTarget(items, null, false)).toBe("close");
    expect(trapTarget(items, "dialog", false)).toBe("close");
    expect(trapTarget(items, "dialog", true)).toBe("ok");
  });

  it("keeps a single item focused both ways", () => {
    expect(trapTarget(["close"], "close", false)).toBe("close");
    expect(trapTarget(["close"], "close", true)).toBe("close");
  });

  it("has no target when there is nothing to focus", () => {
    expect(trapTarget([], null, false)).toBeNull();
  });
});
