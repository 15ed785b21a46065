/** How much of the labeler's lease is left, and when to warn: pure, so it is unit-tested (lease.test.ts). */

/** Warn at most this long before the lease ends... */
export const WARN_BEFORE_MS = 60_000;
/** ...and, for short leases, only in their last fifth. */
export const WARN_SHARE = 0.2;

export type LeaseLevel = "ok" | "warn" | "expired";

export type LeaseStatus = { level: LeaseLevel; msLeft: number };

/** When a lease of this length starts warning (ms before its end). */
export function warnBeforeMs(leaseMs: number): number {
  return Math.min(WARN_BEFORE_MS, Math.max(0, leaseMs) * WARN_SHARE);
}

/** The lease's state at `now` (the server's time, see api.serverNow); times are the API's ISO strings. */
export function leaseStatus(lease: { created_at: string; expires_at: string }, now: number): LeaseStatus {
  const expires = Date.parse(lease.expires_at);
  const created = Date.parse(lease.created_at);
  if (Number.isNaN(expires)) return { level: "ok", msLeft: Infinity };
  const msLeft = expires - now;
  if (msLeft <= 0) return { level: "expired", msLeft: 0 };
  const length = Number.isNaN(created) ? WARN_BEFORE_MS / WARN_SHARE : expires - created;
  return { level: msLeft <= warnBeforeMs(length) ? "warn" : "ok", msLeft };
}

/** 42_300 -> "0:43" (rounded up: "0:00" only once it has ended). */
export function formatLeft(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}
