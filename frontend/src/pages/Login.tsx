import { useState, type FormEvent } from "react";
import { ApiError } from "../api";
import { useSession } from "../session";

export function Login() {
  const { signIn } = useSession();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      await signIn(username, password);
    } catch (err) {
      setError(err instanceof ApiError ? err.detail : "Cannot reach the server; try again.");
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card login" onSubmit={submit} aria-label="Sign in">
      <h1>RankForge</h1>
      <label>
        Username
        <input name="username" autoFocus autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        Password
        <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" disabled={busy || !username || !password}>
        Sign in
      </button>
    </form>
  );
}
