/** The side panel: the project's instructions, then every criterion's, the active one marked. */
import type { Criterion } from "../api";
import { Markdown } from "./Markdown";

export function InstructionsPanel({ instructions, criteria, activeId }: { instructions: string; criteria: Criterion[]; activeId: number | undefined }) {
  return (
    <aside className="lw-panel" id="lw-panel" aria-label="Instructions">
      <h2>Instructions</h2>
      {instructions.trim() ? (
        <Markdown className="lw-md" source={instructions} />
      ) : (
        <p className="muted">This project has no written instructions.</p>
      )}
      {criteria.length > 0 && (
        <>
          <h2>Criteria</h2>
          {criteria.map((criterion) => (
            <section
              key={criterion.id}
              className={`lw-criterion${activeId === criterion.id ? " active" : ""}`}
              aria-current={activeId === criterion.id ? "true" : undefined}
            >
              <h3>{criterion.name}</h3>
              {criterion.instructions.trim() ? (
                <Markdown className="lw-md" source={criterion.instructions} />
              ) : (
                <p className="muted">No instructions.</p>
              )}
            </section>
          ))}
        </>
      )}
      <p className="muted lw-panel-keys">
        Press <kbd>?</kbd> for the keyboard shortcuts, <kbd>i</kbd> to hide this panel.
      </p>
    </aside>
  );
}
