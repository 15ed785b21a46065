import { useEffect, useState } from "react";

export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/** Time spent on the current comparison; re-renders itself only, once a second. */
export function Timer({ startedAt, paused = false }: { startedAt: number; paused?: boolean }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    setNow(Date.now());
    if (paused) return;
    const id = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(id);
  }, [startedAt, paused]);
  return (
    <span className="lw-timer" title="Time on this comparison">
      <span className="lw-stat-label">Time</span>
      <time aria-label="Time on this comparison" dateTime={`PT${Math.max(0, Math.floor((now - startedAt) / 1000))}S`}>
        {formatElapsed(now - startedAt)}
      </time>
    </span>
  );
}
