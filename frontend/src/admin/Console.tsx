/** The admin console of one project: a tab per concern, the tab in the path (/projects/:id/admin/:tab).
 * Admins edit; reviewers get the same screens read-only (edit controls hidden or disabled). */
import { api, type Project } from "../api";
import { ModelsTab } from "../registry/ModelsTab";
import { RoundsPage } from "../rounds/RoundsPage";
import { Link, match, usePath } from "../router";
import { RunPage } from "../runs/RunPage";
import { SweepPage } from "../sweeps/SweepPage";
import { SweepsTab } from "../sweeps/SweepsTab";
import { ErrorNote } from "../ui/components";
import { useLoad } from "../ui/hooks";
import { AuditTab } from "./AuditTab";
import { ConstitutionTab } from "./ConstitutionTab";
import { CriteriaTab } from "./CriteriaTab";
import { DatasetsTab } from "./DatasetsTab";
import { ExternalTab } from "./ExternalTab";
import { ImportsTab } from "./ImportsTab";
import { MembersTab } from "./MembersTab";
import { QualityTab } from "./QualityTab";
import { SettingsTab } from "./SettingsTab";
import { SnapshotsTab } from "./SnapshotsTab";
import { TemplatesTab } from "./TemplatesTab";

export const TABS = [
  { id: "settings", label: "Settings" },
  { id: "members", label: "Members" },
  { id: "criteria", label: "Criteria" },
  { id: "datasets", label: "Datasets" },
  { id: "templates", label: "Templates" },
  { id: "imports", label: "Imports" },
  { id: "quality", label: "Quality" },
  { id: "constitution", label: "Constitution" },
  { id: "audit", label: "AI audit" },
  { id: "snapshots", label: "Snapshots" },
  { id: "runs", label: "Runs" },
  { id: "sweeps", label: "Sweeps" },
  { id: "rounds", label: "Rounds" },
  { id: "models", label: "Models" },
] as const;

/** Where a tab lives: /projects/:id/admin/:tab, except the rounds (/projects/:id/rounds). */
function tabHref(projectId: number, tab: string): string {
  return tab === "rounds" ? `/projects/${projectId}/rounds` : `/projects/${projectId}/admin/${tab}`;
}

export type TabProps = { project: Project; canEdit: boolean; onProjectChange: (project: Project) => void };

export function Console({ projectId }: { projectId: number }) {
  const path = usePath();
  const runId = match("/projects/:id/admin/runs/:run", path)?.run;
  const sweepId = match("/projects/:id/admin/sweeps/:sweep", path)?.sweep;
  const onRounds = match("/projects/:id/rounds", path) !== null;
  const tab = runId ? "runs" : sweepId ? "sweeps" : onRounds ? "rounds" : (match("/projects/:id/admin/:tab", path)?.tab ?? "settings");
  const { data: project, error, setData } = useLoad(() => api.get<Project>(`projects/${projectId}/`), String(projectId));

  if (error) return <ErrorNote error={error} />;
  if (!project) return <p>Loading project…</p>;
  if (project.role !== "admin" && project.role !== "reviewer") {
    return (
      <p className="error" role="alert">
        The admin console is for project admins and reviewers; you are a {project.role ?? "guest"} here.{" "}
        <Link href={`/projects/${project.id}/label`}>Go to labeling</Link>
      </p>
    );
  }
  const canEdit = project.role === "admin";
  const props: TabProps = { project, canEdit, onProjectChange: setData };
  const known = TABS.some((t) => t.id === tab);

  return (
    <section className="console">
      <header className="console-head">
        <h1>{project.name}</h1>
        <span className="muted">
          {canEdit ? "You are an admin of this project." : "You are a reviewer: read-only, except snapshots."}
        </span>
      </header>
      <nav className="tabs" aria-label="Admin sections">
        {TABS.map((t) => (
          <Link key={t.id} href={tabHref(project.id, t.id)} className={t.id === tab ? "tab active" : "tab"} aria-current={t.id === tab ? "page" : undefined}>
            {t.label}
          </Link>
        ))}
      </nav>
      <div className="tab-panel">
        {tab === "settings" && <SettingsTab {...props} />}
        {tab === "members" && <MembersTab {...props} />}
        {tab === "criteria" && <CriteriaTab {...props} />}
        {tab === "datasets" && <DatasetsTab {...props} />}
        {tab === "templates" && <TemplatesTab {...props} />}
        {tab === "imports" && <ImportsTab {...props} />}
        {tab === "quality" && <QualityTab {...props} />}
        {tab === "constitution" && <ConstitutionTab {...props} />}
        {tab === "audit" && <AuditTab {...props} />}
        {tab === "snapshots" && <SnapshotsTab {...props} />}
        {tab === "runs" && !runId && <ExternalTab projectId={project.id} canEdit={canEdit} />}
        {tab === "runs" && runId && <RunPage runId={Number(runId)} backHref={`/projects/${project.id}/admin/runs`} />}
        {tab === "sweeps" && !sweepId && <SweepsTab projectId={project.id} canStart={canEdit} />}
        {tab === "sweeps" && sweepId && <SweepPage sweepId={Number(sweepId)} backHref={`/projects/${project.id}/admin/sweeps`} inConsole />}
        {tab === "rounds" && <RoundsPage project={project} canEdit={canEdit} />}
        {tab === "models" && <ModelsTab projectId={project.id} />}
        {!known && <p>No tab named “{tab}”.</p>}
      </div>
    </section>
  );
}
