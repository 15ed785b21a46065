/** One criterion of the leaderboard: ranked versions, the score plot, the win matrix, length bias and the AI judge. */
import { Link } from "../router";
import { formatNumber } from "../ui/scale";
import { LengthBiasChart, ScorePlot } from "./EvalCharts";
import { agreementFor, entryName, formatInterval, formatShare, hasVotes, rankedRows, verdictFor, type Row } from "./leaderboard";
import type { CriterionRef, Entry, Evaluation, Results } from "./types";
import { WinMatrix } from "./WinMatrix";

export function CriterionPanel({ evaluation, results, criterion }: { evaluation: Evaluation; results: Results; criterion: CriterionRef }) {
  const human = verdictFor(results.human, criterion.id);
  const ai = verdictFor(results.ai, criterion.id);
  const humanVotes = hasVotes(human);
  const aiVotes = hasVotes(ai);
  const rows = rankedRows(results.entries.length ? results.entries : evaluation.entries, human, ai);
  return (
    <div className="stack" data-criterion={criterion.name}>
      {!humanVotes && (
        <p className="card empty-state" role="status" data-testid="no-labels">
          No human labels yet for <b>{criterion.name}</b>: the ranking fills in as labelers compare the answers.{" "}
          <Link href={`/projects/${evaluation.project}/label`}>Start labeling</Link>
        </p>
      )}
      {(humanVotes || aiVotes) && (
        <section className="card" aria-label={`Leaderboard (${criterion.name})`}>
          <h2>Leaderboard</h2>
          <p className="muted small">
            {human ? `${human.votes} human votes on ${human.comparisons} comparisons.` : ""} Bradley-Terry scores on the Elo scale (mean 1000), 95% bootstrap
            intervals.
          </p>
          <RankTable rows={rows} showAi={aiVotes} />
          <ScorePlot rows={rows} criterion={criterion.name} showAi={aiVotes} />
        </section>
      )}
      {humanVotes && human && (
        <section className="card" aria-label={`Head to head (${criterion.name})`}>
          <h2>Head to head</h2>
          <WinMatrix rows={rows} pairs={human.pairs} criterion={criterion.name} />
        </section>
      )}
      {humanVotes && human && (
        <section className="card" aria-label={`Length bias (${criterion.name})`}>
          <LengthBiasChart bias={human.length_bias} criterion={criterion.name} />
          <p className="muted small" hidden={human.length_bias.bins.length === 0}>
            Each point: of the votes between two answers whose lengths differ by that many words, the share the longer one won (ties count half). Near 50% in
            every band: the labelers do not simply prefer longer answers.
          </p>
        </section>
      )}
      <AiJudge evaluation={evaluation} results={results} criterion={criterion} hasAi={aiVotes} />
    </div>
  );
}

/** What identifies the version beyond its label: "policy v3" when the label says something else, else its id. */
function versionNote(entry: Entry): string {
  const plain = `${entry.model} v${entry.number}`;
  return entryName(entry) === plain ? `version id ${entry.version}` : plain;
}

function RankTable({ rows, showAi }: { rows: Row[]; showAi: boolean }) {
  return (
    <table className="table leaderboard" aria-label="Versions by score">
      <thead>
        <tr>
          <th className="num">Rank</th>
          <th>Version</th>
          <th className="num">Score</th>
          <th className="num">95% interval</th>
          <th className="num">Votes</th>
          {showAi && <th className="num">AI judge score</th>}
          {showAi && <th className="num">AI interval</th>}
          {showAi && <th className="num">AI rank</th>}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.entry.id} data-entry={r.entry.id}>
            <td className="num">{r.human?.rank ?? "—"}</td>
            <td>
              <b>{entryName(r.entry)}</b> <span className="muted small">{versionNote(r.entry)}</span>
            </td>
            <td className="num" data-testid="score">
              {formatNumber(r.human?.score, 1)}
            </td>
            <td className="num">{formatInterval(r.human?.low, r.human?.high)}</td>
            <td className="num">{r.human?.votes ?? 0}</td>
            {showAi && <td className="num">{formatNumber(r.ai?.score, 1)}</td>}
            {showAi && <td className="num">{formatInterval(r.ai?.low, r.ai?.high)}</td>}
            {showAi && <td className="num">{r.ai?.rank ?? "—"}</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AiJudge({ evaluation, results, criterion, hasAi }: { evaluation: Evaluation; results: Results; criterion: CriterionRef; hasAi: boolean }) {
  const agreement = agreementFor(results.agreement, criterion.id);
  return (
    <section className="card" aria-label={`AI judge (${criterion.name})`}>
      <h2>AI judge</h2>
      {!hasAi ? (
        <p className="muted empty-state" data-testid="no-ai-judge">
          No AI judge yet. Start an <code>ai_feedback</code> run on the evaluation project (
          <Link href={`/projects/${evaluation.project}/admin/runs`}>its Runs tab</Link>) and its verdict appears here beside the humans’, with how often it
          agrees with them.
        </p>
      ) : agreement && agreement.n > 0 ? (
        <p data-testid="ai-agreement">
          The AI judge picks the humans’ winner in <b>{formatShare(agreement.rate, agreement.low, agreement.high)}</b> of {agreement.n} comparisons (
          {agreement.agree} agree). Its scores are in the table and the plot above, in orange.
        </p>
      ) : (
        <p className="muted" data-testid="ai-agreement">
          The AI judge has labeled, but no comparison has both its label and a human one yet: no agreement to show.
        </p>
      )}
    </section>
  );
}
