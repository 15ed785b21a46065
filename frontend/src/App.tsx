import { apiUrl } from "./api";

export function App() {
  return (
    <main style={{ fontFamily: "system-ui, sans-serif", maxWidth: 640, margin: "4rem auto", padding: "0 1rem" }}>
      <h1>RankForge</h1>
      <p>The labeling UI is not built yet.</p>
      <ul>
        <li>
          <a href={apiUrl("docs/")}>API documentation</a>
        </li>
        <li>
          <a href="/admin/">Django admin</a>
        </li>
      </ul>
    </main>
  );
}
