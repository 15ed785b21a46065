/** The comparison itself: the prompt, then one card per completion with the active order's marks. */
import { CompletionCard } from "./CompletionCard";
import type { RankingAction, RankingState } from "./ranking";
import type { Lease } from "./types";

type Props = {
  lease: Lease;
  ranking: RankingState;
  names: string[];
  disabled: boolean;
  apply: (action: RankingAction) => void;
};

export function ComparisonView({ lease, ranking, names, disabled, apply }: Props) {
  const k = ranking.k;
  const order = ranking.orders[ranking.active];
  return (
    <>
      <section className="lw-prompt" aria-labelledby="lw-prompt-title">
        <h2 id="lw-prompt-title">Prompt</h2>
        <div className="lw-prompt-text" tabIndex={0} aria-label="Prompt text" data-testid="prompt">
          {lease.comparison.prompt}
        </div>
      </section>

      <div className="lw-completions" style={{ ["--lw-k" as string]: String(Math.min(k, 4)) }}>
        {lease.completions.map((completion, i) => (
          <CompletionCard
            key={completion.id}
            index={i}
            text={completion.text}
            k={k}
            mark={order.marks[i]}
            selected={i === ranking.selected}
            disabled={disabled}
            summary={
              ranking.criteria && ranking.criteria.length > 1
                ? ranking.orders.map((o, c) => ({ name: names[c], mark: o.marks[i], active: c === ranking.active }))
                : null
            }
            apply={apply}
          />
        ))}
      </div>
    </>
  );
}
