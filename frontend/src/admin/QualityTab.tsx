/** The quality dashboard: progress, agreement over time, per-labeler quality with outliers marked,
 * and position bias. Reads GET .../stats/ (now) and GET .../stats/timeline/ (per hour or day). */
import { useState } from "react";
import { api, type Criterion } from "../api";
import { COLORS, LabelerBars, RankDistributionChart, Sparkline, TimeSeriesChart } from "../ui/charts";
import { ErrorNote } from "../ui/components";
import { useLoad } from "../ui/hooks";
import { formatBucket, formatNumber, formatPercent, highOutliers, lowOutliers, median } from "../ui/scale";
import type { TabProps } from "./Console";
import type { Bucket, Stats, StatsLabeler, Timeline } from "./types";

const SOURCES = ["human", "ai", "imported"];

/** Day buckets, unless the whole timeline fits in fewer than 3 days: then hours. */
async function loadTimeline(projectId: number, bucket: Bucket | "auto", params: Record<string, string | undefined>): Promise<Timeline> {
  const get = (b: Bucket) => api.get<Timeline>(`projects/${projectId}/stats/timeline/`, { ...params, bucket: b });
  if (bucket !== "auto") return get(bucket);
  const daily = await get("day");
  if (daily.buckets.length >= 3) return daily;
  try {
    return await get("hour");
  } catch {
    return daily;
  }
}

export function QualityTab({ project }: TabProps) {
  const [bucket, setBucket] = useState<Bucket | "auto">("auto");
  const [criterion, setCriterion] = useState("");
  const [sources, setSources] = useState<string[]>(["human"]);
  const params = { criterion: criterion || undefined, sources: sources.join(",") };
  const key = JSON.stringify([project.id, params]);
  const criteria = useLoad(() => api.get<Criterion[]>(`projects/${project.id}/criteria/`), String(project.id));
  const stats = useLoad(() => api.get<Stats>(`projects/${project.id}/stats/`, params), key);
  const timeline = useLoad(() => loadTimeline(project.id, bucket, params), `${key}${bucket}`);

  const toggleSource = (source: string) =>
    setSources((current) => {
      const next = current.includes(source) ? current.filter((s) => s !== source) : [...current, source];
      return next.length ? SOURCES.filter((s) => next.includes(s)) : current;
    });

  return (
    <div className="quality">
      <div className="card controls" aria-label="Dashboard filters">
        <label>
          Bucket{" "}
          <select value={bucket} onChange={(e) => setBucket(e.target.value as Bucket | "auto")}>
            <option value="auto">auto</option>
            <option value="hour">hour</option>
            <option value="day">day</option>
          </select>
        </label>
        <label>
          Criterion{" "}
          <select value={criterion} onChange={(e) => setCriterion(e.target.value)}>
            <option value="">every order</option>
            {criteria.data?.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <span>
          Labels from{" "}
          {SOURCES.map((s) => (
            <label key={s} className="check">
              <input type="checkbox" checked={sources.includes(s)} onChange={() => toggleSource(s)} /> {s}
            </label>
          ))}
        </span>
        <button className="secondary" onClick={() => (void stats.reload(), void timeline.reload())}>
          Refresh
        </button>
      </div>
      <ErrorNote error={stats.error} />
      {stats.data && <Headline stats={stats.data} />}
      <ErrorNote error={timeline.error} />
      {timeline.data && <Timelines timeline={timeline.data} />}
      {stats.data && <Labelers stats={stats.data} timeline={timeline.data} />}
      {timeline.data && (
        <section className="card">
          <RankDistributionChart levels={timeline.data.rank_distribution.levels} positions={timeline.data.rank_distribution.positions} />
          <p className="muted small">
            Without position bias each position gets rank 1 about equally often (1 in {timeline.data.rank_distribution.positions.length}). Completions are
            shown to labelers in position order.
          </p>
        </section>
      )}
    </div>
  );
}

function Figure({ label, value, detail, testId }: { label: string; value: string; detail?: string; testId?: string }) {
  return (
    <div className="figure card">
      <div className="figure-label">{label}</div>
      <div className="figure-value" data-testid={testId}>
        {value}
      </div>
      {detail && <div className="figure-detail muted">{detail}</div>}
    </div>
  );
}

function Headline({ stats }: { stats: Stats }) {
  const { progress, agreement } = stats;
  const done = progress.comparisons_total ? progress.complete / progress.comparisons_total : null;
  return (
    <div className="figures" aria-label="Headline figures">
      <Figure
        label="Complete"
        value={`${progress.complete.toLocaleString()} / ${progress.comparisons_total.toLocaleString()}`}
        detail={`${formatPercent(done, 0)} · ${progress.in_progress} in progress · overlap ${progress.overlap}`}
        testId="progress-complete"
      />
      <Figure label="Rankings" value={progress.rankings_total.toLocaleString()} detail={`${progress.skipped} skipped · ${progress.live_leases} live leases`} />
      <Figure
        label="Pairwise agreement"
        value={formatPercent(agreement?.pairwise_rate)}
        detail={agreement ? `${agreement.pairwise_agreements} of ${agreement.pairwise_pairs} shared pairs · ${agreement.shared_items} shared items` : undefined}
        testId="pairwise-rate"
      />
      <Figure
        label="Krippendorff's α (ordinal)"
        value={formatNumber(agreement?.krippendorff_alpha_ordinal, 3)}
        detail={agreement ? `${agreement.krippendorff_units} units` : undefined}
        testId="krippendorff-alpha"
      />
      <Figure
        label="Kendall's τ-b (mean)"
        value={formatNumber(agreement?.kendall_tau_b, 3)}
        detail={agreement ? `${agreement.kendall_tau_b_cases} labeler pairs on items` : undefined}
      />
    </div>
  );
}

function Timelines({ timeline }: { timeline: Timeline }) {
  if (timeline.buckets.length === 0) {
    return <p className="card muted">No rankings yet: the plots over time appear once labelers submit.</p>;
  }
  const labels = timeline.buckets.map((b) => formatBucket(b.start, timeline.bucket));
  const alphas = timeline.buckets.map((b) => b.krippendorff_alpha_ordinal);
  const lowest = Math.min(0, ...alphas.filter((a): a is number => a !== null));
  const percent = (v: number) => formatPercent(v, 0);
  const computed = timeline.buckets.filter((b) => b.alpha_computed).length;
  return (
    <>
      <div className="chart-grid">
        <section className="card">
          <TimeSeriesChart
            title={`Completed comparisons (cumulative, per ${timeline.bucket}, UTC)`}
            labels={labels}
            series={[{ name: "completed", color: COLORS.green, values: timeline.buckets.map((b) => b.completed), kind: "line" }]}
            reference={{ value: timeline.comparisons_total, label: `${timeline.comparisons_total} comparisons` }}
            yFormat={(v) => String(v)}
          />
        </section>
        <section className="card">
          <TimeSeriesChart
            title={`Rankings submitted per ${timeline.bucket}`}
            labels={labels}
            series={[{ name: "rankings", color: COLORS.blue, values: timeline.buckets.map((b) => b.rankings), kind: "bar" }]}
            yFormat={(v) => String(v)}
          />
        </section>
      </div>
      <section className="card">
        <TimeSeriesChart
          title="Agreement over every ranking up to each point"
          labels={labels}
          series={[
            { name: "pairwise agreement rate", color: COLORS.blue, values: timeline.buckets.map((b) => b.pairwise_rate), kind: "line", connectGaps: true },
            { name: "Krippendorff's α (ordinal)", color: COLORS.orange, values: alphas, kind: "line", dots: true, connectGaps: true },
          ]}
          yDomain={[lowest < 0 ? Math.floor(lowest * 5) / 5 : 0, 1]}
          yFormat={percent}
          reference={{ value: 0.73, label: "InstructGPT ≈ 73%" }}
        />
        <p className="muted small">
          The pairwise rate is exact at every {timeline.bucket}; α (dots) is recomputed at {computed} of them, spread over the rankings (always the
          latest). Both start once two labelers share an item.
        </p>
      </section>
    </>
  );
}

function Labelers({ stats, timeline }: { stats: Stats; timeline: Timeline | null }) {
  const rows = stats.labelers;
  const perBucket = new Map(timeline?.labelers.map((l) => [l.labeler, l.per_bucket]) ?? []);
  const gold = rows.map((r) => r.gold_accuracy);
  const consensus = rows.map((r) => r.consensus_agreement);
  const speed = rows.map((r) => r.throughput_per_hour);
  const speedMedian = median(speed.filter((v): v is number => v !== null)) ?? 0;
  const lowGold = lowOutliers(gold, { minGap: 0.1 });
  const lowConsensus = lowOutliers(consensus, { minGap: 0.1 });
  const lowSpeed = lowOutliers(speed, { minGap: 0.3 * speedMedian });
  const fast = highOutliers(speed, { minGap: speedMedian });
  const bars = (values: (number | null)[], notes: (r: StatsLabeler) => string) => rows.map((r, i) => ({ label: r.username, value: values[i], note: notes(r) }));
  return (
    <>
      <div className="chart-grid">
        <section className="card">
          <LabelerBars title="Gold accuracy per labeler" rows={bars(gold, (r) => (r.gold_pairs ? `${r.gold_pairs} pairs` : ""))} flagged={lowGold} max={1} />
        </section>
        <section className="card">
          <LabelerBars
            title="Agreement with the other labelers' majority"
            rows={bars(consensus, (r) => (r.consensus_pairs ? `${r.consensus_pairs} pairs` : ""))}
            flagged={lowConsensus}
            max={1}
          />
        </section>
        <section className="card">
          <LabelerBars
            title="Throughput (tasks per hour of work)"
            rows={bars(speed, () => "")}
            flagged={lowSpeed}
            flaggedHigh={fast}
            highLabel="fast"
            format={(v) => formatNumber(v, 0)}
          />
        </section>
      </div>
      <section className="card">
        <h3>Labelers</h3>
        <p className="muted small">
          Red: well below the project median (gold accuracy or consensus 10+ points under it, throughput under 70% of it). Amber: more than twice the
          median speed, worth a look when quality is low too.
        </p>
        <table className="table" aria-label="Labeler quality">
          <thead>
            <tr>
              <th>Labeler</th>
              <th className="num">Rankings</th>
              <th className="num">Skipped</th>
              <th>Per {timeline?.bucket ?? "bucket"}</th>
              <th className="num">Tasks / hour</th>
              <th className="num">Median s / task</th>
              <th className="num">Gold accuracy</th>
              <th className="num">Consensus</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={r.labeler}>
                <td>{r.username}</td>
                <td className="num">{r.rankings}</td>
                <td className="num">{r.skipped}</td>
                <td>{perBucket.get(r.labeler) ? <Sparkline values={perBucket.get(r.labeler)!} label={`${r.username} rankings per ${timeline?.bucket}`} /> : <span className="muted">—</span>}</td>
                <td className={lowSpeed.has(i) ? "num low" : fast.has(i) ? "num high" : "num"}>{formatNumber(r.throughput_per_hour, 0)}</td>
                <td className="num">{formatNumber(r.median_seconds_per_task, 1)}</td>
                <td className={lowGold.has(i) ? "num low" : "num"}>{formatPercent(r.gold_accuracy, 0)}</td>
                <td className={lowConsensus.has(i) ? "num low" : "num"}>{formatPercent(r.consensus_agreement, 0)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
