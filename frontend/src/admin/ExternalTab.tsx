/** The Runs tab: runs live in another app (/api/runs/). Where the server has no such endpoint (404)
 * the tab says so plainly; where it answers, the tab lists what it returns. Each run links to its
 * page; the list refreshes itself while a run is queued or running. Project admins get a "Start a
 * run" button that opens the form (runs/StartRunForm.tsx). The Models tab is registry/ModelsTab.tsx. */
import { useEffect, useState } from "react";
import { ApiError, api, type Page } from "../api";
import { Link } from "../router";
import { isTerminal, stateTone } from "../runs/runEvents";
import { StartRunForm } from "../runs/StartRunForm";
import { Badge, ErrorNote } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";

const RUNS_POLL_MS = 3000;

type Item = Record<string, unknown>;

const COLUMNS = ["id", "kind", "state", "progress_step", "progress_total", "created_at", "finished_at", "error"];

async function loadRuns(projectId: number): Promise<Item[]> {
  const read = (page: Page<Item> | Item[]) => (Array.isArray(page) ? page : page.results);
  try {
    return read(await api.get<Page<Item>>("runs/", { project: projectId, limit: 100 }));
  } catch (error) {
    // A runs API without the project filter: list what it shows this user.
    if (error instanceof ApiError && error.status === 400) return read(await api.get<Page<Item>>("runs/", { limit: 100 }));
    throw error;
  }
}

function cell(column: string, value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (column.endsWith("_at") && typeof value === "string") return formatWhen(value);
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    return entries.length ? entries.map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`).join(", ") : "—";
  }
  return String(value);
}

function RunCell({ column, item, projectId }: { column: string; item: Item; projectId: number }) {
  if (column === "id") return <Link href={`/projects/${projectId}/admin/runs/${String(item.id)}`}>Run {String(item.id)}</Link>;
  if (column === "state" && typeof item.state === "string") return <Badge tone={stateTone(item.state)}>{item.state}</Badge>;
  return <>{cell(column, item[column])}</>;
}

/** `canEdit` (the console's: the user is an admin of the project) shows "Start a run". */
export function ExternalTab({ projectId, canEdit = false }: { projectId: number; canEdit?: boolean }) {
  const items = useLoad(() => loadRuns(projectId), `runs:${projectId}`);
  const [starting, setStarting] = useState(false);
  const live = (items.data ?? []).some((item) => typeof item.state === "string" && !isTerminal(item.state));

  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => void items.reload(), RUNS_POLL_MS);
    return () => clearInterval(timer);
  }, [live, items.reload]);

  const title = "Training runs";
  if (items.error instanceof ApiError && items.error.status === 404) {
    return (
      <section className="card">
        <h2>{title}</h2>
        <p role="status">
          {title} are not available yet: this server has no <code>/api/runs/</code> endpoint (it answered 404). They arrive with the training API.
        </p>
      </section>
    );
  }
  const list = items.data;
  const columns = list && list.length ? COLUMNS.filter((c) => list.some((item) => c in item)) : [];
  return (
    <div className="stack">
      {canEdit && starting && <StartRunForm projectId={projectId} onCancel={() => setStarting(false)} />}
      <section className="card">
        <div className="editor-head">
          <h2>{title}</h2>
          {canEdit && !starting && (
            <button type="button" className="start-run-button" onClick={() => setStarting(true)}>
              Start a run
            </button>
          )}
        </div>
        <p className="muted small">Runs of this project, newest first, as /api/runs/ reports them.</p>
        <ErrorNote error={items.error} />
        {list?.length === 0 && <p role="status">None yet.</p>}
        {list && list.length > 0 && (
          <table className="table" aria-label={title}>
            <thead>
              <tr>
                {columns.map((c) => (
                  <th key={c}>{c.replace(/_/g, " ")}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {list.map((item, i) => (
                <tr key={String(item.id ?? i)}>
                  {columns.map((c) => (
                    <td key={c} className={c === "error" ? "clip" : undefined}>
                      <RunCell column={c} item={item} projectId={projectId} />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
