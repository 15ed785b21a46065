import { useState, type FormEvent } from "react";
import { api, type Page, type Role } from "../api";
import { ErrorNote, Field, ReadOnlyNote } from "../ui/components";
import { errorText, fieldErrors, formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import type { TabProps } from "./Console";
import type { Member } from "./types";

const ROLES: Role[] = ["labeler", "reviewer", "admin"];

export function MembersTab({ project, canEdit }: TabProps) {
  const members = useLoad(() => api.get<Page<Member>>(`projects/${project.id}/members/`, { limit: 500 }), String(project.id));
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("labeler");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [removeError, setRemoveError] = useState("");
  const [busy, setBusy] = useState(false);

  const add = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      await api.post(`projects/${project.id}/members/`, { username: username.trim(), role });
      setUsername("");
      await members.reload();
    } catch (error) {
      setErrors(fieldErrors(error));
    } finally {
      setBusy(false);
    }
  };

  const remove = async (member: Member) => {
    if (!window.confirm(`Remove ${member.username} from ${project.name}?`)) return;
    setRemoveError("");
    try {
      await api.delete(`projects/${project.id}/members/${member.id}/`);
      await members.reload();
    } catch (error) {
      setRemoveError(errorText(error));
    }
  };

  return (
    <div className="stack">
      <section className="card">
        <h2>Members</h2>
        <ReadOnlyNote canEdit={canEdit} />
        <ErrorNote error={members.error} />
        {removeError && (
          <p className="error" role="alert">
            {removeError}
          </p>
        )}
        {members.data && (
          <table className="table">
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
                <th>Since</th>
                {canEdit && <th />}
              </tr>
            </thead>
            <tbody>
              {members.data.results.map((m) => (
                <tr key={m.id}>
                  <td>{m.username}</td>
                  <td>
                    <span className={`role role-${m.role}`}>{m.role}</span>
                  </td>
                  <td>{formatWhen(m.created_at)}</td>
                  {canEdit && (
                    <td className="right">
                      <button className="link danger" onClick={() => void remove(m)} aria-label={`Remove ${m.username}`}>
                        Remove
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {canEdit && (
        <form className="card form" onSubmit={add} aria-label="Add a member">
          <h3>Add a member</h3>
          <p className="muted">An existing account joins the project, or changes role if already a member.</p>
          <div className="row">
            <Field label="Username" error={errors.username}>
              <input value={username} onChange={(e) => setUsername(e.target.value)} required />
            </Field>
            <Field label="Role" error={errors.role}>
              <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map((r) => (
                  <option key={r}>{r}</option>
                ))}
              </select>
            </Field>
            <button type="submit" disabled={busy || !username.trim()}>
              Add member
            </button>
          </div>
          {errors[""] && (
            <p className="error" role="alert">
              {errors[""]}
            </p>
          )}
        </form>
      )}
    </div>
  );
}
