/** Per-criterion projects: one tab per criterion with its progress, and the active criterion's instructions in brief. */
import type { Criterion } from "../api";
import { keepFocus } from "./CompletionCard";
import { isOrderComplete, type RankingAction, type RankingState } from "./ranking";

type Props = {
  ranking: RankingState;
  /** The ranking's criterion ids (`ranking.criteria`, known not to be null here). */
  ids: number[];
  names: string[];
  activeCriterion: Criterion | undefined;
  apply: (action: RankingAction) => void;
};

export function CriteriaTabs({ ranking, ids, names, activeCriterion, apply }: Props) {
  return (
    <div className="lw-criteria" role="tablist" aria-label="Criteria ([ and ] switch)">
      {ids.map((id, o) => (
        <button
          key={id}
          type="button"
          role="tab"
          aria-selected={o === ranking.active}
          className={`lw-tab${o === ranking.active ? " active" : ""}${isOrderComplete(ranking.orders[o]) ? " done" : ""}`}
          onMouseDown={keepFocus} onClick={() => apply({ type: "criterion", index: o })}
        >
          {names[o]}
          <span className="lw-tab-state">
            {isOrderComplete(ranking.orders[o])
              ? " ✓"
              : ` ${ranking.orders[o].marks.filter((m) => m !== null).length}/${ranking.k}`}
          </span>
        </button>
      ))}
      <span className="muted lw-criteria-hint">
        Ranking by <b data-testid="active-criterion">{names[ranking.active]}</b>
        {activeCriterion?.instructions ? ` — ${activeCriterion.instructions.split("\n")[0].slice(0, 120)}` : ""}
      </span>
    </div>
  );
}
