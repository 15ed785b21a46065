/** The admin console (being built). */
export function Console({ projectId }: { projectId: number }) {
  return <p>The admin console for project {projectId} is being built.</p>;
}
