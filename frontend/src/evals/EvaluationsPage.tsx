/**
 * The side-by-side evaluations a user may see (/evaluations, or ?project=ID for one source or
 * evaluation project), each with its status and labeling progress; admins of a project start a new
 * one here (NewEvaluationForm).
 */
import { useState } from "react";
import { api, type Page } from "../api";
import { Link, navigate, useSearch } from "../router";
import { Badge, ErrorNote, ProgressBar } from "../ui/components";
import { formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import { evalApi } from "./evalApi";
import { entryName, labelFraction, statusTone } from "./leaderboard";
import { NewEvaluationForm } from "./NewEvaluationForm";
import type { Evaluation, ProjectWithKind } from "./types";

function projectParam(search: string): number | undefined {
  const value = new URLSearchParams(search).get("project");
  return value && /^\d+$/.test(value) ? Number(value) : undefined;
}

export function EvaluationsPage() {
  const projectId = projectParam(useSearch());
  const projects = useLoad(async () => (await api.get<Page<ProjectWithKind>>("projects/", { limit: 200 })).results, "projects");
  const evaluations = useLoad(() => evalApi.list(projectId), String(projectId ?? ""));
  const [creating, setCreating] = useState(false);
  const adminOf = (projects.data ?? []).filter((p) => p.role === "admin" && p.kind !== "evaluation");
  const filterProjects = projects.data ?? [];

  return (
    <section className="console evals">
      <header className="console-head">
        <h1>Evaluations</h1>
        <span className="muted">Human side-by-side comparisons of registered model versions on the same prompts, ranked as Chatbot Arena ranks.</span>
      </header>
      <div className="card controls">
        <label>
          Project{" "}
          <select
            value={projectId ?? ""}
            onChange={(e) => navigate(e.target.value ? `/evaluations?project=${e.target.value}` : "/evaluations", { replace: true })}
          >
            <option value="">All my projects</option>
            {projectId !== undefined && !filterProjects.some((p) => p.id === projectId) && <option value={projectId}>project {projectId}</option>}
            {filterProjects.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        {adminOf.length > 0 && !creating && (
          <button type="button" className="start-run-button" onClick={() => setCreating(true)}>
            New evaluation
          </button>
        )}
      </div>
      <ErrorNote error={projects.error} />
      {creating && (
        <NewEvaluationForm
          projects={adminOf}
          initialProject={adminOf.some((p) => p.id === projectId) ? projectId : undefined}
          onCreated={(ev) => navigate(`/evaluations/${ev.id}`)}
          onCancel={() => setCreating(false)}
        />
      )}
      <ErrorNote error={evaluations.error} />
      {evaluations.loading && !evaluations.data && <p role="status">Loading evaluations…</p>}
      {evaluations.data && <EvaluationTable evaluations={evaluations.data.results} count={evaluations.data.count} />}
    </section>
  );
}

function EvaluationTable({ evaluations, count }: { evaluations: Evaluation[]; count: number }) {
  if (evaluations.length === 0) {
    return (
      <p className="card muted empty-state" role="status">
        No evaluations yet. An admin of a project starts one with “New evaluation”: pick the versions to compare and the prompts they answer.
      </p>
    );
  }
  return (
    <section className="card">
      <table className="table eval-list" aria-label="Evaluations">
        <thead>
          <tr>
            <th>Evaluation</th>
            <th>Status</th>
            <th>Versions</th>
            <th>Labels</th>
            <th>Created</th>
            <th>Published</th>
          </tr>
        </thead>
        <tbody>
          {evaluations.map((ev) => (
            <tr key={ev.id} data-evaluation={ev.id}>
              <td>
                <Link href={`/evaluations/${ev.id}`}>{ev.name || `Evaluation ${ev.id}`}</Link>
              </td>
              <td>
                <Badge tone={statusTone(ev.status)}>{ev.status}</Badge>
              </td>
              <td className="small">{ev.entries.map(entryName).join(" · ")}</td>
              <td className="eval-labels">
                <ProgressBar fraction={labelFraction(ev.progress) ?? 0} label={`Labels of ${ev.name || `evaluation ${ev.id}`}`} />
                <span className="muted small">
                  {ev.progress.labels} / {ev.progress.labels_needed}
                </span>
              </td>
              <td>{formatWhen(ev.created_at)}</td>
              <td>{ev.published_at ? formatWhen(ev.published_at) : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {count > evaluations.length && (
        <p className="muted small">
          Showing the {evaluations.length} newest of {count}.
        </p>
      )}
    </section>
  );
}
