/** The newest lines of a run's log, monospace, following new lines unless the reader scrolled up. */
import { useLayoutEffect, useRef } from "react";
import type { LogLine } from "./runEvents";

/** Within this many pixels of the bottom counts as "at the bottom": keep following. */
const STICK_PX = 24;

export function LogTail({ lines, dropped }: { lines: LogLine[]; dropped: number }) {
  const box = useRef<HTMLDivElement>(null);
  const follow = useRef(true);

  useLayoutEffect(() => {
    const element = box.current;
    if (element && follow.current) element.scrollTop = element.scrollHeight;
  }, [lines]);

  const onScroll = () => {
    const element = box.current;
    if (element) follow.current = element.scrollHeight - element.scrollTop - element.clientHeight < STICK_PX;
  };

  if (lines.length === 0) return <p className="muted">No log lines yet.</p>;
  return (
    <div className="log-tail mono" ref={box} onScroll={onScroll} tabIndex={0} role="log" aria-label="Run log">
      {dropped > 0 && <div className="muted">… {dropped.toLocaleString()} older lines not shown</div>}
      {lines.map((line) => (
        <div key={line.seq} className={`log-line log-${line.level}`} data-seq={line.seq}>
          <span className="log-when">{new Date(line.at).toLocaleTimeString("en-GB")}</span>
          {line.stream !== "event" && <span className="log-stream">{line.stream}</span>}
          <span className="log-message">{line.message}</span>
        </div>
      ))}
    </div>
  );
}
