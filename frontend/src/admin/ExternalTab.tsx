/** Runs and Models live in other apps (/api/runs/, /api/models/). Where the server has no such
 * endpoint (404) the tab says so plainly; where it answers, the tab lists what it returns. Each run
 * links to its page; the list refreshes itself while a run is queued or running. Project admins get
 * a "Start a run" button that opens the form (runs/StartRunForm.tsx). */
import { useEffect, useState } from "react";
import { ApiError, api, type Page } from "../api";
import { Link } from "../router";
import { isTerminal, stateTone } from "../runs/runEvents";
import { StartRunForm } from "../runs/StartRunForm";
import { formatWhen } from "./format";
import { useLoad } from "./hooks";
import { Badge, ErrorNote } from "./ui";

const RUNS_POLL_MS = 3000;

type Item = Record<string, unknown>;

const COLUMNS: Record<"runs" | "models", string[]> = {
  runs: ["id", "kind", "state", "progress_step", "progress_total", "created_at", "finished_at", "error"],
  models: ["id", "name", "task", "version_count", "latest_version", "aliases", "created_at"],
};

async function loadItems(kind: "runs" | "models", projectId: number): Promise<Item[]> {
  const read = (page: Page<Item> | Item[]) => (Array.isArray(page) ? page : page.results);
  if (kind === "models") return read(await api.get<Page<Item> | Item[]>("models/", { limit: 100 }));
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

/** `canEdit` (the console's: the user is an admin of the project) shows "Start a run" on the Runs tab. */
export function ExternalTab({ kind, projectId, canEdit = false }: { kind: "runs" | "models"; projectId: number; canEdit?: boolean }) {
  const items = useLoad(() => loadItems(kind, projectId), `${kind}:${projectId}`);
  const mayStart = kind === "runs" && canEdit;
  const [starting, setStarting] = useState(false);
  const live = kind === "runs" && (items.data ?? []).some((item) => typeof item.state === "string" && !isTerminal(item.state));

  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => void items.reload(), RUNS_POLL_MS);
    return () => clearInterval(timer);
  }, [live, items.reload]);

  const title = kind === "runs" ? "Training runs" : "Models";
  if (items.error instanceof ApiError && items.error.status === 404) {
    return (
      <section className="card">
        <h2>{title}</h2>
        <p role="status">
          {title} are not available yet: this server has no <code>/api/{kind}/</code> endpoint (it answered 404). They arrive with the{" "}
          {kind === "runs" ? "training" : "model registry"} API.
        </p>
      </section>
    );
  }
  const list = items.data;
  const columns = list && list.length ? COLUMNS[kind].filter((c) => list.some((item) => c in item)) : [];
  return (
    <div className="stack">
      {mayStart && starting && <StartRunForm projectId={projectId} onCancel={() => setStarting(false)} />}
      <section className="card">
        <div className="editor-head">
          <h2>{title}</h2>
          {mayStart && !starting && (
            <button type="button" className="start-run-button" onClick={() => setStarting(true)}>
              Start a run
            </button>
          )}
        </div>
        <p className="muted small">{kind === "runs" ? "Runs of this project, newest first, as /api/runs/ reports them." : "Registered models, as /api/models/ reports them."}</p>
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
                      {kind === "runs" ? <RunCell column={c} item={item} projectId={projectId} /> : cell(c, item[c])}
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
