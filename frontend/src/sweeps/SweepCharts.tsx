/**
 * A sweep's plots, drawn with the shared chart kit (ui/charts.tsx colours and legend, ui/scale.ts
 * scales, ticks and paths, ui/hooks.ts width): the metric against each searched parameter (a log axis
 * for a log range, a category per choice) and the metric by trial number with the best so far as a
 * step line. The plot data and ticks come from sweeps.ts (paramPlot, bestPlot, axisTicks).
 */
import { COLORS, Legend } from "../ui/charts";
import { useWidth } from "../ui/hooks";
import { linePath, niceDomain, niceTicks, scaleLinear } from "../ui/scale";
import { axisTicks, formatParam, formatValue, type ParamPlot } from "./sweeps";

const M = { top: 12, right: 16, bottom: 38, left: 58 };
const LABEL_CHARS = 14;

function short(label: string): string {
  return label.length > LABEL_CHARS ? `${label.slice(0, LABEL_CHARS - 1)}…` : label;
}

type TrialPlotProps = {
  title: string;
  plot: ParamPlot;
  metric: string;
  /** The best so far, in data space (x as the plot's axis). */
  line?: [number, number][];
  height?: number;
  chart: string;
};

/** Trials as points (the best one larger, in green; pruned or running ones hollow at their last reported value). */
export function TrialPlot({ title, plot, metric, line = [], height = 210, chart }: TrialPlotProps) {
  const [ref, width] = useWidth<HTMLElement>(340);
  const ys = [...plot.points.map((p) => p.y), ...line.map(([, y]) => y)];
  // Room above and below the values, so that the best point clears the axis.
  const [yMin, yMax] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  const yPad = (yMax - yMin || Math.abs(yMax) || 1) * 0.06;
  const yDomain = niceDomain(yMin >= 0 ? Math.max(0, yMin - yPad) : yMin - yPad, yMax + yPad, 4);
  const innerW = width - M.left - M.right;
  // A little room either side of a value axis, so that points at its ends clear the frame.
  const [d0, d1] = plot.domain;
  const pad = plot.axis === "category" ? 0 : (d1 - d0 || 1) * 0.04;
  const x = scaleLinear([d0 - pad, d1 + pad], [M.left, width - M.right]);
  const y = scaleLinear(yDomain, [height - M.bottom, M.top]);
  const ticks = axisTicks(plot, Math.floor(innerW / 70));
  const partial = plot.points.some((p) => p.partial);
  const legend = [
    { name: "trial", color: COLORS.blue },
    { name: "best so far", color: COLORS.green },
    ...(partial ? [{ name: "pruned or running (last value)", color: COLORS.gray }] : []),
  ];
  const points = [...plot.points].sort((a, b) => Number(a.best) - Number(b.best)); // the best drawn last, on top
  return (
    <figure className="chart" ref={ref} data-chart={chart} data-param={plot.field} data-axis={plot.axis}>
      <figcaption>
        {title}
        {plot.missing > 0 && <span className="muted small">{`  ${plot.missing} ${plot.missing === 1 ? "trial" : "trials"} without a value yet`}</span>}
      </figcaption>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title}>
        {niceTicks(yDomain[0], yDomain[1], 4).map((tick) => (
          <g key={tick}>
            <line x1={M.left} x2={width - M.right} y1={y(tick)} y2={y(tick)} stroke={COLORS.grid} />
            <text x={M.left - 6} y={y(tick) + 4} textAnchor="end" className="tick">
              {formatParam(tick)}
            </text>
          </g>
        ))}
        <line x1={M.left} x2={width - M.right} y1={height - M.bottom} y2={height - M.bottom} stroke={COLORS.gray} />
        {ticks.map((tick) => (
          <text key={tick.at} x={x(tick.at)} y={height - M.bottom + 15} textAnchor="middle" className="tick">
            {short(tick.label)}
            {tick.label.length > LABEL_CHARS && <title>{tick.label}</title>}
          </text>
        ))}
        <text x={M.left + innerW / 2} y={height - 4} textAnchor="middle" className="tick">
          {plot.axis === "log" ? `${plot.field} (log scale)` : plot.field}
        </text>
        <text x={12} y={M.top + (height - M.top - M.bottom) / 2} textAnchor="middle" className="tick" transform={`rotate(-90 12 ${M.top + (height - M.top - M.bottom) / 2})`}>
          {metric}
        </text>
        {line.length > 0 && (
          <path className="best-line" d={linePath(line.map(([a, b]) => [x(a), y(b)]))} fill="none" stroke={COLORS.green} strokeWidth={2} />
        )}
        {points.map((p) => (
          <circle
            key={p.trial}
            className="trial-point"
            data-trial={p.trial}
            data-best={p.best || undefined}
            cx={x(p.x)}
            cy={y(p.y)}
            r={p.best ? 6 : 4}
            fill={p.partial ? "#fff" : p.best ? COLORS.green : COLORS.blue}
            fillOpacity={p.partial || p.best ? 1 : 0.75}
            stroke={p.partial ? COLORS.gray : p.best ? COLORS.dark : COLORS.blue}
            strokeWidth={p.best ? 1.5 : 1}
          >
            <title>{`trial ${p.trial}: ${plot.field === "trial" ? "" : `${plot.field} ${p.text}, `}${metric} ${formatValue(p.y)}${p.partial ? " (last reported)" : ""}${p.best ? " · best so far" : ""}`}</title>
          </circle>
        ))}
      </svg>
      <Legend items={legend} />
    </figure>
  );
}
