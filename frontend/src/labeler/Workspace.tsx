/**
 * The labeler workspace: one comparison at a time (the server's live lease), ranked with the keyboard
 * or the mouse, submitted with retries, then straight on to the next one.
 *
 * The lease queue (requests, ranking, submit / skip) is useLeaseQueue.ts; keys are read on the window
 * (useWindowKeys.ts, the key map `commandForKey` in ranking.ts, the `?` overlay). This file lays out
 * the views and owns what is only view: the help overlay and the instructions panel.
 */
import { useEffect, useRef, useState } from "react";
import { ComparisonView } from "./ComparisonView";
import { CriteriaTabs } from "./CriteriaTabs";
import { HelpOverlay } from "./HelpOverlay";
import { InstructionsPanel } from "./InstructionsPanel";
import { LeaseWarning } from "./LeaseWarning";
import { OrderBoard } from "./OrderBoard";
import type { Command } from "./ranking";
import { RankingFooter } from "./RankingFooter";
import { useLeaseQueue } from "./useLeaseQueue";
import { useWindowKeys } from "./useWindowKeys";
import { NoticeBar, WorkspaceBar } from "./WorkspaceBar";
import { CannotLabel, LoadingLease, NothingLeft } from "./WorkspaceStates";

export function Workspace({ projectId }: { projectId: number }) {
  const queue = useLeaseQueue(projectId);
  const { project, criteria, lease, phase, ranking, busy, apply } = queue;
  const [helpOpen, setHelpOpen] = useState(false);
  const [panelOpen, setPanelOpen] = useState(() => typeof window === "undefined" || window.innerWidth >= 1100);
  const rootRef = useRef<HTMLDivElement>(null);
  const commentBox = useRef<HTMLTextAreaElement>(null);

  const run = (command: Command) => {
    if (command.type === "help") setHelpOpen(true);
    else if (command.type === "instructions") setPanelOpen((open) => !open);
    else if (queue.run(command) === "comment") commentBox.current?.focus();
  };
  useWindowKeys({ rootRef, helpOpen, closeHelp: () => setHelpOpen(false), k: ranking.k, run });

  // Keep the selected completion in view.
  useEffect(() => {
    if (phase !== "ready") return;
    const card = rootRef.current?.querySelector<HTMLElement>(".lw-card.selected");
    card?.scrollIntoView?.({ block: "nearest", inline: "nearest" });
  }, [ranking.selected, ranking.active, phase]);

  if (phase === "failed") return <CannotLabel fatal={queue.fatal} />;
  if (phase === "loading" || !project) return <LoadingLease />;
  if (phase === "done" || !lease) return <NothingLeft projectName={project.name} today={queue.today} notice={queue.notice} />;

  const k = ranking.k;
  const names = queue.namesOf(ranking);
  const activeCriterion = ranking.criteria ? criteria.find((c) => c.id === ranking.criteria![ranking.active]) : undefined;
  const disabled = busy !== null;

  return (
    <div
      className={`lw${busy ? " busy" : ""}${panelOpen ? " with-panel" : ""}`}
      ref={rootRef}
      tabIndex={-1}
      aria-busy={busy !== null}
      data-assignment={lease.assignment.id}
    >
      <WorkspaceBar
        projectName={project.name}
        assignmentId={lease.assignment.id}
        today={queue.today}
        progress={queue.progress}
        startedAt={queue.startedAt}
        timerPaused={busy === "submit"}
        panelOpen={panelOpen}
        onTogglePanel={() => setPanelOpen((open) => !open)}
        onHelp={() => setHelpOpen(true)}
      />

      <NoticeBar notice={queue.notice} onDismiss={queue.dismissNotice} />

      <LeaseWarning key={lease.assignment.id} lease={lease.assignment} onNext={queue.leaveExpired} disabled={busy !== null} />

      <div className="lw-body">
        <div className="lw-main">
          {ranking.criteria && <CriteriaTabs ranking={ranking} ids={ranking.criteria} names={names} activeCriterion={activeCriterion} apply={apply} />}

          <ComparisonView lease={lease} ranking={ranking} names={names} disabled={disabled} apply={apply} />

          <OrderBoard
            order={ranking.orders[ranking.active]}
            k={k}
            texts={lease.completions.map((c) => c.text)}
            selected={ranking.selected}
            disabled={disabled}
            title={ranking.criteria ? `Order for ${names[ranking.active]}` : "Your order"}
            apply={apply}
          />

          <RankingFooter
            ranking={ranking}
            names={names}
            comment={queue.comment}
            onComment={queue.setComment}
            commentBox={commentBox}
            busy={busy}
            skipArmed={queue.skipArmed}
            status={queue.status}
            error={queue.error}
            onUndo={() => run({ type: "undo" })}
            onClear={() => apply({ type: "clearAll" })}
            onSkip={() => void queue.skip()}
            onSubmit={() => void queue.submit()}
          />
        </div>

        {panelOpen && <InstructionsPanel instructions={project.instructions} criteria={criteria} activeId={activeCriterion?.id} />}
      </div>

      {helpOpen && <HelpOverlay k={k} onClose={() => setHelpOpen(false)} />}
    </div>
  );
}
