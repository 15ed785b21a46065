/** Plain SVG plots: the quality dashboard's time series, per-labeler bars and rank distribution; a run's metric by step. */
import { useWidth } from "./hooks";
import { formatNumber, formatPercent, labelEvery, linePath, median, niceDomain, niceTicks, scaleLinear } from "./scale";

export const COLORS = { blue: "#2456d6", orange: "#c2410c", green: "#1a7f37", red: "#b42318", gray: "#8a94a3", grid: "#e6e9ee", dark: "#1c1f24", amber: "#b45309" };

export type Series = {
  name: string;
  color: string;
  values: (number | null)[];
  kind: "line" | "bar";
  /** Draw a dot on each value (for series measured only at some buckets). */
  dots?: boolean;
  connectGaps?: boolean;
};

type TimeSeriesProps = {
  title: string;
  labels: string[];
  series: Series[];
  yDomain?: [number, number];
  yFormat?: (value: number) => string;
  reference?: { value: number; label: string };
  height?: number;
};

const M = { top: 14, right: 16, bottom: 34, left: 52 };

/** Values per bucket (evenly spaced categories) as lines and/or bars, with y ticks and a legend. */
export function TimeSeriesChart({ title, labels, series, yDomain, yFormat = String, reference, height = 220 }: TimeSeriesProps) {
  const [ref, width] = useWidth<HTMLElement>(560);
  const values = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  if (reference) values.push(reference.value);
  const domain = yDomain ?? niceDomain(Math.min(0, ...values), Math.max(1, ...values));
  const innerW = width - M.left - M.right;
  const innerH = height - M.top - M.bottom;
  const n = Math.max(1, labels.length);
  const band = innerW / n;
  const x = (i: number) => M.left + (i + 0.5) * band;
  const y = scaleLinear(domain, [M.top + innerH, M.top]);
  const zero = y(Math.max(domain[0], Math.min(domain[1], 0)));
  const shown = labelEvery(labels.length, Math.floor(innerW / 78));
  return (
    <figure className="chart" ref={ref}>
      <figcaption>{title}</figcaption>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        {niceTicks(domain[0], domain[1], 4).map((tick) => (
          <g key={tick}>
            <line x1={M.left} x2={width - M.right} y1={y(tick)} y2={y(tick)} stroke={COLORS.grid} />
            <text x={M.left - 6} y={y(tick) + 4} textAnchor="end" className="tick">
              {yFormat(tick)}
            </text>
          </g>
        ))}
        {series
          .filter((s) => s.kind === "bar")
          .map((s) =>
            s.values.map((v, i) =>
              v === null || v === 0 ? null : (
                <rect key={`${s.name}-${i}`} x={x(i) - band * 0.35} width={Math.max(1, band * 0.7)} y={Math.min(y(v), zero)} height={Math.abs(zero - y(v))} fill={s.color} opacity={0.8}>
                  <title>{`${labels[i]}: ${yFormat(v)} ${s.name}`}</title>
                </rect>
              ),
            ),
          )}
        {reference && (
          <g>
            <line x1={M.left} x2={width - M.right} y1={y(reference.value)} y2={y(reference.value)} stroke={COLORS.gray} strokeDasharray="5 4" />
            <text x={width - M.right} y={y(reference.value) - 5} textAnchor="end" className="tick">
              {reference.label}
            </text>
          </g>
        )}
        {series
          .filter((s) => s.kind === "line")
          .map((s) => (
            <g key={s.name}>
              <path d={linePath(s.values.map((v, i) => (v === null ? null : [x(i), y(v)])), s.connectGaps)} fill="none" stroke={s.color} strokeWidth={2} />
              {(s.dots || labels.length === 1) &&
                s.values.map((v, i) =>
                  v === null ? null : (
                    <circle key={i} cx={x(i)} cy={y(v)} r={3} fill={s.color}>
                      <title>{`${labels[i]}: ${s.name} ${yFormat(v)}`}</title>
                    </circle>
                  ),
                )}
            </g>
          ))}
        <line x1={M.left} x2={width - M.right} y1={M.top + innerH} y2={M.top + innerH} stroke={COLORS.gray} />
        {shown.map((i) => (
          <text key={i} x={x(i)} y={height - M.bottom + 16} textAnchor="middle" className="tick">
            {labels[i]}
          </text>
        ))}
      </svg>
      <Legend items={series.map((s) => ({ name: s.name, color: s.color }))} />
    </figure>
  );
}

export function Legend({ items }: { items: { name: string; color: string }[] }) {
  return (
    <ul className="legend">
      {items.map((item) => (
        <li key={item.name}>
          <span className="swatch" style={{ background: item.color }} />
          {item.name}
        </li>
      ))}
    </ul>
  );
}

export type BarRow = { label: string; value: number | null; note?: string };

type LabelerBarsProps = {
  title: string;
  rows: BarRow[];
  /** Indexes of rows to highlight as low outliers (red). */
  flagged: Set<number>;
  /** Indexes of rows to mark as unusually high (amber), where that is suspicious too. */
  flaggedHigh?: Set<number>;
  highLabel?: string;
  format?: (value: number) => string;
  max?: number;
};

/** One horizontal bar per labeler, the project median as a dashed line, low outliers in red. */
export function LabelerBars({ title, rows, flagged, flaggedHigh = new Set(), highLabel = "high", format = (v) => formatPercent(v, 0), max }: LabelerBarsProps) {
  const [ref, width] = useWidth<HTMLElement>(360);
  const measured = rows.map((r) => r.value).filter((v): v is number => v !== null);
  const top = max ?? niceDomain(0, Math.max(0, ...measured))[1];
  const mid = median(measured);
  const row = 26;
  const left = Math.min(140, 16 + 7.5 * Math.max(4, ...rows.map((r) => r.label.length)));
  const right = 130;
  const height = rows.length * row + 30;
  const x = scaleLinear([0, top || 1], [left, width - right]);
  return (
    <figure className="chart" ref={ref}>
      <figcaption>{title}</figcaption>
      {rows.length === 0 ? (
        <p className="muted">No labelers yet.</p>
      ) : (
        <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
          {mid !== null && (
            <g>
              <line x1={x(mid)} x2={x(mid)} y1={2} y2={height - 20} stroke={COLORS.dark} strokeDasharray="4 3" strokeWidth={1.5} />
              <text x={x(mid)} y={height - 6} textAnchor="middle" className="tick">
                median {format(mid)}
              </text>
            </g>
          )}
          {rows.map((r, i) => {
            const yTop = 8 + i * row;
            const low = flagged.has(i);
            const high = flaggedHigh.has(i);
            const color = low ? COLORS.red : high ? COLORS.amber : COLORS.blue;
            return (
              <g key={r.label} className={low ? "outlier" : undefined}>
                <text x={left - 8} y={yTop + 15} textAnchor="end" className={low ? "bar-label low" : "bar-label"}>
                  {r.label}
                </text>
                {r.value === null ? (
                  <text x={left + 4} y={yTop + 15} className="tick">
                    no data
                  </text>
                ) : (
                  <>
                    <rect x={left} y={yTop + 3} width={Math.max(1, x(r.value) - left)} height={row - 8} fill={color} opacity={low || high ? 0.95 : 0.7} rx={2}>
                      <title>{`${r.label}: ${format(r.value)}${r.note ? ` (${r.note})` : ""}`}</title>
                    </rect>
                    <text x={x(r.value) + 6} y={yTop + 15} className={low ? "bar-value low" : high ? "bar-value high" : "bar-value"}>
                      {format(r.value)}
                      {low ? " ▼ low" : high ? ` ▲ ${highLabel}` : ""}
                      {r.note ? <tspan className="tick">{`  ${r.note}`}</tspan> : null}
                    </text>
                  </>
                )}
              </g>
            );
          })}
        </svg>
      )}
    </figure>
  );
}

/** Per completion position, a 100% bar split by the level it got (1 best .. K, then F). */
export function RankDistributionChart({ levels, positions }: { levels: string[]; positions: { position: number; orders: number; counts: number[] }[] }) {
  const [ref, width] = useWidth<HTMLElement>(560);
  const row = 30;
  const left = 92;
  const right = 16;
  const height = positions.length * row + 12;
  const colors = levelColors(levels);
  const x = scaleLinear([0, 1], [left, width - right]);
  const title = "Rank by completion position";
  return (
    <figure className="chart" ref={ref}>
      <figcaption>{title}</figcaption>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        {positions.map((p, i) => {
          const yTop = 6 + i * row;
          let start = 0;
          return (
            <g key={p.position}>
              <text x={left - 8} y={yTop + 17} textAnchor="end" className="bar-label">
                {`Position ${p.position + 1}`}
              </text>
              {p.orders === 0 ? (
                <text x={left + 4} y={yTop + 17} className="tick">
                  no rankings
                </text>
              ) : (
                p.counts.map((count, j) => {
                  const share = count / p.orders;
                  const x0 = x(start);
                  start += share;
                  const w = x(start) - x0;
                  if (count === 0) return null;
                  return (
                    <g key={j}>
                      <rect x={x0} y={yTop + 2} width={w} height={row - 6} fill={colors[j]}>
                        <title>{`Position ${p.position + 1}: ${levels[j] === "F" ? "marked F" : `rank ${levels[j]}`} in ${count} of ${p.orders} orders (${formatPercent(share, 0)})`}</title>
                      </rect>
                      {w > 34 && (
                        <text x={x0 + w / 2} y={yTop + 17} textAnchor="middle" className="segment-label">
                          {formatPercent(share, 0)}
                        </text>
                      )}
                    </g>
                  );
                })
              )}
            </g>
          );
        })}
      </svg>
      <Legend items={levels.map((level, j) => ({ name: level === "F" ? "F (off-task)" : `rank ${level}`, color: colors[j] }))} />
    </figure>
  );
}

/** Green for rank 1 through amber to red for rank K; dark gray for F. */
function levelColors(levels: string[]): string[] {
  const ranks = levels.filter((l) => l !== "F").length;
  return levels.map((level, j) => {
    if (level === "F") return "#3d4451";
    const t = ranks <= 1 ? 0 : j / (ranks - 1);
    const hue = 130 - t * 125; // 130 (green) .. 5 (red)
    return `hsl(${hue.toFixed(0)} 55% ${(42 + 8 * Math.sin(Math.PI * t)).toFixed(0)}%)`;
  });
}

/** A tiny bar strip: one labeler's rankings per bucket. */
export function Sparkline({ values, width = 160, height = 26, label }: { values: number[]; width?: number; height?: number; label: string }) {
  const top = Math.max(1, ...values);
  const band = width / Math.max(1, values.length);
  return (
    <svg className="sparkline" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={label}>
      <line x1={0} x2={width} y1={height - 0.5} y2={height - 0.5} stroke={COLORS.grid} />
      {values.map((v, i) =>
        v ? <rect key={i} x={i * band + band * 0.1} width={Math.max(1, band * 0.8)} y={height - (v / top) * (height - 2)} height={(v / top) * (height - 2)} fill={COLORS.blue} /> : null,
      )}
    </svg>
  );
}

type StepChartProps = {
  title: string;
  points: { step: number; value: number | null }[];
  color?: string;
  height?: number;
  yFormat?: (value: number) => string;
};

/** One metric against a numeric x (the training step): a line broken where the value is missing. */
export function StepChart({ title, points, color = COLORS.blue, height = 180, yFormat = (v) => formatNumber(v, 4) }: StepChartProps) {
  const [ref, width] = useWidth<HTMLElement>(360);
  const steps = points.map((p) => p.step);
  const values = points.map((p) => p.value).filter((v): v is number => v !== null);
  const xDomain: [number, number] = steps.length ? [Math.min(...steps), Math.max(...steps)] : [0, 1];
  const yDomain = values.length ? niceDomain(Math.min(...values), Math.max(...values), 4) : ([0, 1] as [number, number]);
  const m = { top: 10, right: 14, bottom: 28, left: 56 };
  const x = scaleLinear(xDomain, [m.left, width - m.right]);
  const y = scaleLinear(yDomain, [height - m.bottom, m.top]);
  const xTicks = niceTicks(xDomain[0], xDomain[1], Math.max(2, Math.floor((width - m.left - m.right) / 80)));
  const last = [...points].reverse().find((p) => p.value !== null);
  return (
    <figure className="chart" ref={ref} data-metric={title}>
      <figcaption>
        {title}
        {last && last.value !== null && <span className="muted small">{`  ${yFormat(last.value)} at step ${last.step}`}</span>}
      </figcaption>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title} by step`}>
        {niceTicks(yDomain[0], yDomain[1], 4).map((tick) => (
          <g key={tick}>
            <line x1={m.left} x2={width - m.right} y1={y(tick)} y2={y(tick)} stroke={COLORS.grid} />
            <text x={m.left - 6} y={y(tick) + 4} textAnchor="end" className="tick">
              {yFormat(tick)}
            </text>
          </g>
        ))}
        <line x1={m.left} x2={width - m.right} y1={height - m.bottom} y2={height - m.bottom} stroke={COLORS.gray} />
        {xTicks.map((tick) => (
          <text key={tick} x={x(tick)} y={height - m.bottom + 16} textAnchor="middle" className="tick">
            {tick}
          </text>
        ))}
        <path d={linePath(points.map((p) => (p.value === null ? null : [x(p.step), y(p.value)])))} fill="none" stroke={color} strokeWidth={2} />
        {points.length === 1 && points[0].value !== null && <circle cx={x(points[0].step)} cy={y(points[0].value)} r={3} fill={color} />}
      </svg>
    </figure>
  );
}
