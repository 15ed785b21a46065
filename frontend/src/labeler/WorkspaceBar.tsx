/** The workspace's top bar: project and task, today's count and what is left, the timer, the panel and help buttons. */
import { keepFocus } from "./CompletionCard";
import type { Progress } from "./queue";
import { Timer } from "./Timer";

type Props = {
  projectName: string;
  assignmentId: number;
  today: number | null;
  progress: Progress | null;
  startedAt: number;
  timerPaused: boolean;
  panelOpen: boolean;
  onTogglePanel: () => void;
  onHelp: () => void;
};

export function WorkspaceBar({ projectName, assignmentId, today, progress, startedAt, timerPaused, panelOpen, onTogglePanel, onHelp }: Props) {
  return (
    <header className="lw-bar">
      <div className="lw-title">
        <h1>{projectName}</h1>
        <span className="muted" data-testid="task-id">
          Task #{assignmentId}
        </span>
      </div>
      <div className="lw-stats" aria-label="Progress">
        <span>
          <span className="lw-stat-label">Today</span>
          <b data-testid="today-count">{today ?? "…"}</b>
        </span>
        <span>
          <span className="lw-stat-label">Left in project</span>
          <b data-testid="left-count">{progress ? progress.left : "…"}</b>
          {progress && <span className="muted"> / {progress.total}</span>}
        </span>
        <Timer startedAt={startedAt} paused={timerPaused} />
      </div>
      <div className="lw-tools">
        <button
          type="button"
          className="secondary"
          aria-expanded={panelOpen}
          aria-controls="lw-panel"
          onMouseDown={keepFocus} onClick={onTogglePanel}
          title="Show or hide the instructions (i)"
        >
          Instructions
        </button>
        <button type="button" className="secondary" aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" onClick={onHelp}>
          ?
        </button>
      </div>
    </header>
  );
}

/** Why the last comparison was not stored (its lease went to someone else), until dismissed. */
export function NoticeBar({ notice, onDismiss }: { notice: string; onDismiss: () => void }) {
  if (!notice) return null;
  return (
    <div className="lw-notice" role="alert">
      <span>{notice}</span>
      <button type="button" className="link" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
