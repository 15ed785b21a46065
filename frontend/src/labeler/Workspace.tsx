/** The labeler workspace (being built). */
export function Workspace({ projectId }: { projectId: number }) {
  return <p>Labeling for project {projectId} is being built.</p>;
}
