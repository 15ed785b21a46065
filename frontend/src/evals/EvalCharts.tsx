/** The leaderboard's SVG plots: scores with interval whiskers per version, and the length-bias chart. */
import { COLORS, Legend } from "../ui/charts";
import { useWidth } from "../ui/hooks";
import { formatNumber, formatPercent, niceTicks, scaleLinear } from "../ui/scale";
import { binLabel, entryName, formatInterval, formatShare, scoreDomain, type Row } from "./leaderboard";
import type { LengthBias, Scored } from "./types";

const HUMAN = { name: "Humans", color: COLORS.blue };
const AI = { name: "AI judge", color: COLORS.orange };

/** One row per version (best first): the human score as a dot with its 95% whisker, the AI judge's below it. */
export function ScorePlot({ rows, criterion, showAi }: { rows: Row[]; criterion: string; showAi: boolean }) {
  const [ref, width] = useWidth<HTMLElement>(560);
  const title = `Bradley-Terry scores with 95% intervals (${criterion})`;
  const rowH = showAi ? 40 : 30;
  const left = Math.min(190, 16 + 7 * Math.max(6, ...rows.map((r) => entryName(r.entry).length)));
  const m = { top: 8, right: 18, bottom: 34 };
  const height = m.top + rows.length * rowH + m.bottom;
  const domain = scoreDomain(rows);
  const x = scaleLinear(domain, [left, width - m.right]);
  const ticks = niceTicks(domain[0], domain[1], Math.max(2, Math.floor((width - left - m.right) / 70)));
  const axisY = height - m.bottom;

  const mark = (s: Scored | null, y: number, color: string, who: string, name: string) =>
    s && (
      <g key={who}>
        {s.low !== null && s.high !== null && (
          <>
            <line x1={x(s.low)} x2={x(s.high)} y1={y} y2={y} stroke={color} strokeWidth={2} />
            <line x1={x(s.low)} x2={x(s.low)} y1={y - 4} y2={y + 4} stroke={color} strokeWidth={2} />
            <line x1={x(s.high)} x2={x(s.high)} y1={y - 4} y2={y + 4} stroke={color} strokeWidth={2} />
          </>
        )}
        <circle cx={x(s.score)} cy={y} r={4.5} fill={color}>
          <title>{`${name}, ${who}: ${formatNumber(s.score, 1)} (95% interval ${formatInterval(s.low, s.high)}), rank ${s.rank}, ${s.votes} votes`}</title>
        </circle>
      </g>
    );

  return (
    <figure className="chart" ref={ref} data-chart="scores">
      <figcaption>Scores</figcaption>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        {ticks.map((tick) => (
          <g key={tick}>
            <line x1={x(tick)} x2={x(tick)} y1={m.top} y2={axisY} stroke={COLORS.grid} />
            <text x={x(tick)} y={axisY + 16} textAnchor="middle" className="tick">
              {tick}
            </text>
          </g>
        ))}
        <line x1={x(1000)} x2={x(1000)} y1={m.top} y2={axisY} stroke={COLORS.gray} strokeDasharray="5 4" />
        <text x={x(1000) + 4} y={axisY + 30} className="tick">
          mean 1000
        </text>
        <line x1={left} x2={width - m.right} y1={axisY} y2={axisY} stroke={COLORS.gray} />
        {rows.map((r, i) => {
          const mid = m.top + i * rowH + rowH / 2;
          const name = entryName(r.entry);
          return (
            <g key={r.entry.id} data-entry={r.entry.id}>
              <text x={left - 8} y={mid + 4} textAnchor="end" className="bar-label">
                {name}
              </text>
              {mark(r.human, showAi ? mid - 7 : mid, HUMAN.color, "humans", name)}
              {showAi && mark(r.ai, mid + 7, AI.color, "AI judge", name)}
            </g>
          );
        })}
      </svg>
      <Legend items={showAi ? [HUMAN, AI] : [HUMAN]} />
    </figure>
  );
}

/** The longer answer's win share per band of length difference, with intervals, n under each band and 50% marked. */
export function LengthBiasChart({ bias, criterion }: { bias: LengthBias; criterion: string }) {
  const [ref, width] = useWidth<HTMLElement>(560);
  const title = `Longer answer's win share by length difference in words (${criterion})`;
  const height = 230;
  const m = { top: 12, right: 16, bottom: 52, left: 48 };
  const bins = bias.bins;
  const band = (width - m.left - m.right) / Math.max(1, bins.length);
  const x = (i: number) => m.left + (i + 0.5) * band;
  const y = scaleLinear([0, 1], [height - m.bottom, m.top]);
  const percent = (v: number) => formatPercent(v, 0);
  return (
    <figure className="chart" ref={ref} data-chart="length-bias">
      <figcaption>
        Length bias{" "}
        <span className="muted small" data-testid="length-bias-overall">
          {bias.n > 0 ? `longer answer wins ${formatShare(bias.longer_wins, bias.low, bias.high)}, n = ${bias.n}` : "no votes between answers of different length yet"}
        </span>
      </figcaption>
      {bins.length > 0 && (
        <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
          {[0, 0.25, 0.5, 0.75, 1].map((tick) => (
            <g key={tick}>
              <line x1={m.left} x2={width - m.right} y1={y(tick)} y2={y(tick)} stroke={COLORS.grid} />
              <text x={m.left - 6} y={y(tick) + 4} textAnchor="end" className="tick">
                {percent(tick)}
              </text>
            </g>
          ))}
          <line x1={m.left} x2={width - m.right} y1={y(0.5)} y2={y(0.5)} stroke={COLORS.dark} strokeDasharray="5 4" />
          <text x={width - m.right} y={y(0.5) - 5} textAnchor="end" className="tick">
            50%: no bias
          </text>
          {bins.map((bin, i) => (
            <g key={`${bin.min_words}-${bin.max_words}`} data-bin={binLabel(bin)}>
              <line x1={x(i)} x2={x(i)} y1={y(bin.low)} y2={y(bin.high)} stroke={COLORS.blue} strokeWidth={2} />
              <line x1={x(i) - 5} x2={x(i) + 5} y1={y(bin.low)} y2={y(bin.low)} stroke={COLORS.blue} strokeWidth={2} />
              <line x1={x(i) - 5} x2={x(i) + 5} y1={y(bin.high)} y2={y(bin.high)} stroke={COLORS.blue} strokeWidth={2} />
              <circle cx={x(i)} cy={y(bin.longer_wins)} r={4.5} fill={COLORS.blue}>
                <title>{`${binLabel(bin)} words longer: the longer answer wins ${formatShare(bin.longer_wins, bin.low, bin.high)}, n = ${bin.n}`}</title>
              </circle>
              <text x={x(i)} y={height - m.bottom + 16} textAnchor="middle" className="tick">
                {binLabel(bin)}
              </text>
              <text x={x(i)} y={height - m.bottom + 30} textAnchor="middle" className="tick">
                n={bin.n}
              </text>
            </g>
          ))}
          <text x={m.left + (width - m.left - m.right) / 2} y={height - 6} textAnchor="middle" className="tick">
            length difference (words)
          </text>
        </svg>
      )}
    </figure>
  );
}
