/** The pairwise win-rate matrix: each cell is how often the row's version beat the column's. */
import { formatPercent } from "../ui/scale";
import { cellTitle, entryName, winColor, winMatrix, type Row } from "./leaderboard";
import type { Pair } from "./types";

export function WinMatrix({ rows, pairs, criterion }: { rows: Row[]; pairs: Pair[]; criterion: string }) {
  const order = rows.map((r) => r.entry.id);
  const names = rows.map((r) => entryName(r.entry));
  const cells = winMatrix(order, pairs);
  return (
    <div className="win-matrix-wrap">
      <p className="small">
        <b>Win rate of the row against the column.</b>{" "}
        <span className="muted">Ties and “both bad” count half; hover a cell for its 95% interval and the votes behind it.</span>
      </p>
      <table className="table compact win-matrix" aria-label={`Win rates (${criterion})`}>
        <thead>
          <tr>
            <th scope="col">
              <span className="visually-hidden">Version</span>
            </th>
            {names.map((name) => (
              <th key={name} scope="col" className="num">
                {name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {cells.map((line, i) => (
            <tr key={order[i]}>
              <th scope="row">{names[i]}</th>
              {line.map((cell, j) =>
                cell ? (
                  <td
                    key={order[j]}
                    className="num"
                    style={{ background: winColor(cell.win_rate) }}
                    title={cellTitle(names[i], names[j], cell)}
                    data-row={order[i]}
                    data-col={order[j]}
                  >
                    <b>{formatPercent(cell.win_rate, 0)}</b> <span className="muted small">n={cell.n}</span>
                  </td>
                ) : (
                  <td key={order[j]} className="num muted" data-row={order[i]} data-col={order[j]}>
                    {i === j ? "" : "—"}
                  </td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
