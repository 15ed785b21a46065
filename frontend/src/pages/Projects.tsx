import { useEffect, useState } from "react";
import { ApiError, api, type Page, type Project } from "../api";
import { Link } from "../router";

export function Projects() {
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    api
      .get<Page<Project>>("projects/", { limit: 200 })
      .then((page) => setProjects(page.results))
      .catch((err) => setError(err instanceof ApiError ? err.detail : String(err)));
  }, []);

  if (error) return <p className="error" role="alert">{error}</p>;
  if (!projects) return <p>Loading projects…</p>;
  if (projects.length === 0) return <p>You are not a member of any project yet. Ask a project admin to add you.</p>;
  return (
    <section>
      <h1>Projects</h1>
      <ul className="project-list">
        {projects.map((project) => (
          <li key={project.id} className="card">
            <h2>{project.name}</h2>
            <p className="muted">
              {project.completions_per_prompt} completions per prompt · {project.overlap} labelers each · you are{" "}
              {project.role ?? "a guest"}
            </p>
            <div className="actions">
              <Link className="button" href={`/projects/${project.id}/label`}>
                Start labeling
              </Link>
              {(project.role === "admin" || project.role === "reviewer") && (
                <Link className="button secondary" href={`/projects/${project.id}/admin`}>
                  Manage
                </Link>
              )}
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}
