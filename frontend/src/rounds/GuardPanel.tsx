/**
 * The reward-hacking guard of an RLHF run (GET /api/runs/{id}/guard/), on its run page: the flags
 * as warnings, how the policy's held-out answers differ from the reference's (going on with the
 * user's turn, refusing, length), refusals per prompt group (helpful prompts refused are
 * over-refusal), the rewards before and after, and what people said of its best- and worst-scored
 * samples when the next round put them back. Loaded again when the run's state changes.
 */
import type { Run } from "../runs/runEvents";
import { ErrorNote } from "../ui/components";
import { useLoad } from "../ui/hooks";
import { flagTitle, groupRows, isEmpty, overRefusalLine, peopleRows, rateRows, rewardRows } from "./guard";
import { roundsApi } from "./roundsApi";
import type { GuardReport } from "./types";

export function GuardPanel({ run }: { run: Pick<Run, "id" | "state"> }) {
  const report = useLoad(() => roundsApi.guard(run.id), `${run.id}:${run.state}`);
  return (
    <section className="card guard" aria-label="Reward-hacking guard">
      <h2>Reward-hacking guard</h2>
      <ErrorNote error={report.error} />
      {!report.data && !report.error && <p role="status">Loading the guard…</p>}
      {report.data && (isEmpty(report.data) ? <EmptyGuard /> : <GuardBody report={report.data} />)}
    </section>
  );
}

function EmptyGuard() {
  return (
    <p className="muted" data-testid="guard-empty">
      This run has no held-out samples yet: the guard reads the answers an RLHF run writes when it evaluates on held-out prompts (its policy’s against the
      reference’s). They appear once the run has evaluated.
    </p>
  );
}

function GuardBody({ report }: { report: GuardReport }) {
  const overRefusal = overRefusalLine(report);
  return (
    <div className="stack guard-body">
      {report.flags.length > 0 ? (
        <ul className="guard-flags" aria-label="Guard flags">
          {report.flags.map((flag) => (
            <li key={flag.code} className="warning" data-flag={flag.code}>
              <b>{flagTitle(flag)}.</b> {flag.message}
            </li>
          ))}
        </ul>
      ) : (
        <p className="ok" role="status" data-testid="guard-clear">
          No flags: the policy writes no more user turns or refusals than the reference, and the held-out reward and the people do not contradict its reward.
        </p>
      )}
      <p className="muted small">
        On {report.samples} held-out prompts. “Before” is the reference model’s answer, “after” the policy’s.
      </p>
      <div className="guard-grid">
        <table className="table compact" aria-label="Answers before and after">
          <thead>
            <tr>
              <th>Answers</th>
              <th className="num">Before</th>
              <th className="num">After</th>
            </tr>
          </thead>
          <tbody>
            {rateRows(report).map((row) => (
              <tr key={row.key} data-rate={row.key} className={row.flagged ? "flagged" : undefined}>
                <th scope="row">{row.label}</th>
                <td className="num">{row.before}</td>
                <td className="num">{row.after}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table className="table compact" aria-label="Rewards before and after">
          <thead>
            <tr>
              <th>Mean over the samples</th>
              <th className="num">Before</th>
              <th className="num">After</th>
            </tr>
          </thead>
          <tbody>
            {rewardRows(report).map((row) => (
              <tr key={row.key} data-reward={row.key} data-trend={row.trend ?? undefined}>
                <th scope="row">{row.label}</th>
                <td className="num">{row.before}</td>
                <td className="num">
                  {row.after} {row.trend && <span className={`trend trend-${row.trend}`}>{row.trend === "up" ? "▲" : row.trend === "down" ? "▼" : "="}</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="guard-grid">
        <div>
          <h3>Refusals per prompt group</h3>
          {Object.keys(report.groups).length === 0 ? (
            <p className="muted small">The prompts carry no group: give the dataset rows a field “group” (helpful / harmless) to measure over-refusal.</p>
          ) : (
            <>
              <table className="table compact" aria-label="Refusals per prompt group">
                <thead>
                  <tr>
                    <th>Group</th>
                    <th className="num">Prompts</th>
                    <th className="num">Before</th>
                    <th className="num">After</th>
                  </tr>
                </thead>
                <tbody>
                  {groupRows(report).map((row) => (
                    <tr key={row.group} data-group={row.group} className={row.overRefusal ? "flagged" : undefined}>
                      <th scope="row">
                        {row.group} {row.overRefusal && <span className="badge badge-bad">over-refusal</span>}
                        {row.meaning && <div className="muted small">{row.meaning}</div>}
                      </th>
                      <td className="num">{row.n}</td>
                      <td className="num">{row.before}</td>
                      <td className="num">{row.after}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {overRefusal && <p className="small">{overRefusal}</p>}
            </>
          )}
        </div>
        <div>
          <h3>People on the extremes</h3>
          <table className="table compact" aria-label="People on the extremes">
            <thead>
              <tr>
                <th>Put back to labelers</th>
                <th>Policy wins</th>
                <th className="num">Comparisons</th>
                <th className="num">Votes</th>
              </tr>
            </thead>
            <tbody>
              {peopleRows(report).map((row) => (
                <tr key={row.which} data-which={row.which}>
                  <th scope="row">{row.label}</th>
                  <td>{row.verdict}</td>
                  <td className="num">{row.comparisons}</td>
                  <td className="num">{row.votes}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted small">
            The next round puts the samples the reward model scored best and worst back to labelers, blind, against the reference’s answer; the policy’s
            win share is shown with its 95% interval. A policy people do not prefer on its best-scored samples is gaming its reward.
          </p>
        </div>
      </div>
    </div>
  );
}
