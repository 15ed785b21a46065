import { describe, expect, it } from "vitest";
import { formatLeft, leaseStatus, warnBeforeMs } from "./lease";

const start = Date.parse("2025-03-01T10:00:00Z");
const lease = (seconds: number) => ({ created_at: new Date(start).toISOString(), expires_at: new Date(start + seconds * 1000).toISOString() });

describe("leaseStatus", () => {
  it("warns in the last minute of a long lease", () => {
    const fifteen = lease(900);
    expect(leaseStatus(fifteen, start)).toEqual({ level: "ok", msLeft: 900_000 });
    expect(leaseStatus(fifteen, start + 839_000).level).toBe("ok");
    expect(leaseStatus(fifteen, start + 840_000)).toEqual({ level: "warn", msLeft: 60_000 });
    expect(leaseStatus(fifteen, start + 899_999).level).toBe("warn");
  });

  it("warns only in the last fifth of a short lease", () => {
    const short = lease(60);
    expect(warnBeforeMs(60_000)).toBe(12_000);
    expect(leaseStatus(short, start + 47_000).level).toBe("ok");
    expect(leaseStatus(short, start + 48_000).level).toBe("warn");
  });

  it("is expired at and after the expiry", () => {
    const fifteen = lease(900);
    expect(leaseStatus(fifteen, start + 900_000)).toEqual({ level: "expired", msLeft: 0 });
    expect(leaseStatus(fifteen, start + 3_600_000).level).toBe("expired");
  });

  it("does not warn about a lease it cannot read", () => {
    expect(leaseStatus({ created_at: "", expires_at: "" }, start).level).toBe("ok");
  });
});

describe("formatLeft", () => {
  it("shows minutes and seconds, rounded up", () => {
    expect(formatLeft(42_300)).toBe("0:43");
    expect(formatLeft(60_000)).toBe("1:00");
    expect(formatLeft(0)).toBe("0:00");
    expect(formatLeft(-5)).toBe("0:00");
  });
});
