import { Console } from "./admin/Console";
import { EvaluationPage } from "./evals/EvaluationPage";
import { EvaluationsPage } from "./evals/EvaluationsPage";
import { Workspace } from "./labeler/Workspace";
import { Login } from "./pages/Login";
import { Projects } from "./pages/Projects";
import { Link, match, usePath } from "./router";
import { RunPage } from "./runs/RunPage";
import { SessionProvider, useSession } from "./session";
import { SweepPage } from "./sweeps/SweepPage";
import { SweepsTab } from "./sweeps/SweepsTab";

function Routes({ path }: { path: string }) {
  let params = match("/projects/:id/label", path);
  if (params) return <Workspace projectId={Number(params.id)} />;
  params = match("/projects/:id/admin", path) ?? match("/projects/:id/admin/:tab", path) ?? match("/projects/:id/admin/runs/:run", path) ?? match("/projects/:id/admin/sweeps/:sweep", path) ?? match("/projects/:id/rounds", path);
  if (params) return <Console projectId={Number(params.id)} />;
  params = match("/runs/:id", path);
  if (params) {
    return (
      <section className="console">
        <RunPage runId={Number(params.id)} />
      </section>
    );
  }
  params = match("/sweeps/:id", path);
  if (params && /^\d+$/.test(params.id)) {
    return (
      <section className="console">
        <SweepPage sweepId={Number(params.id)} backHref="/sweeps" />
      </section>
    );
  }
  if (path === "/sweeps" || path === "/sweeps/") {
    return (
      <section className="console">
        <SweepsTab />
      </section>
    );
  }
  params = match("/evaluations/:id", path);
  if (params && /^\d+$/.test(params.id)) return <EvaluationPage evaluationId={Number(params.id)} />;
  if (path === "/evaluations" || path === "/evaluations/") return <EvaluationsPage />;
  if (path === "/" || path === "/projects") return <Projects />;
  return (
    <p>
      Nothing here. <Link href="/">Back to your projects</Link>
    </p>
  );
}

function Shell() {
  const { me, loading, signOut } = useSession();
  const path = usePath();
  if (loading) return <p className="center">Loading…</p>;
  if (!me) return <Login />;
  return (
    <>
      <header className="topbar">
        <Link href="/" className="brand">
          RankForge
        </Link>
        <nav>
          <Link href="/">Projects</Link>
          <Link href="/evaluations">Evaluations</Link>
          <Link href="/sweeps">Sweeps</Link>
          <a href="/api/docs/">API</a>
        </nav>
        <span className="who">
          {me.username}
          <button className="link" onClick={() => void signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <main>
        <Routes path={path} />
      </main>
    </>
  );
}

export function App() {
  return (
    <SessionProvider>
      <Shell />
    </SessionProvider>
  );
}
