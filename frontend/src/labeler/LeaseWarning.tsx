/** A plain warning as the labeler's lease runs out, and a clear message once it has. */
import { useEffect, useState } from "react";
import { serverNow } from "../api";
import { formatLeft, leaseStatus } from "./lease";
import type { Lease } from "./types";

export function LeaseWarning({ lease, onNext, disabled }: { lease: Lease["assignment"]; onNext: () => void; disabled: boolean }) {
  const [now, setNow] = useState(serverNow);
  const status = leaseStatus(lease, now);
  const ended = status.level === "expired";
  useEffect(() => {
    setNow(serverNow());
    if (ended) return;
    const id = window.setInterval(() => setNow(serverNow()), 1000);
    return () => window.clearInterval(id);
  }, [lease.expires_at, ended]);

  if (status.level === "ok") return null;
  if (status.level === "warn") {
    return (
      <div className="lw-lease" role="status" data-testid="lease-warning">
        Your lease on this comparison ends in <b>{formatLeft(status.msLeft)}</b>. Submit soon: after that it may go to someone else.
      </div>
    );
  }
  return (
    <div className="lw-notice" role="alert" data-testid="lease-expired">
      <span>
        Your lease expired — your ranking may not be accepted: it is stored only if nobody else has taken this comparison. Submit it anyway, or get the next item.
      </span>
      <button type="button" className="secondary" onClick={onNext} disabled={disabled}>
        Get the next item
      </button>
    </div>
  );
}
