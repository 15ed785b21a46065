/** The workspace's screens without a comparison: loading, cannot label, nothing left. */
import { Link } from "../router";

export function LoadingLease() {
  return (
    <p className="center" role="status">
      Loading your next comparison…
    </p>
  );
}

export function CannotLabel({ fatal }: { fatal: string }) {
  return (
    <section className="lw-message card">
      <h1>Cannot label right now</h1>
      <p className="error" role="alert">
        {fatal}
      </p>
      <div className="actions">
        <button type="button" onClick={() => window.location.reload()}>
          Try again
        </button>
        <Link className="button secondary" href="/">
          Back to your projects
        </Link>
      </div>
    </section>
  );
}

/** The thank-you screen; `notice` says why the last comparison was not stored, if it was not. */
export function NothingLeft({ projectName, today, notice }: { projectName: string; today: number | null; notice: string }) {
  return (
    <section className="lw-message card">
      <h1>Nothing left to label — thank you!</h1>
      {notice && (
        <p className="lw-notice" role="alert">
          {notice}
        </p>
      )}
      <p>
        {today !== null ? `You ranked ${today} comparison${today === 1 ? "" : "s"} today in ${projectName}. ` : ""}
        Every comparison you can label here is done or leased to someone else; come back later for more.
      </p>
      <Link className="button" href="/">
        Back to your projects
      </Link>
    </section>
  );
}
