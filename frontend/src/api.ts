/** Base path of the REST API, served by Django on the same origin. */
export const API_ROOT = "/api/";

/** Join a path under the API root: apiUrl("projects/1/") -> "/api/projects/1/". */
export function apiUrl(path: string, params?: Record<string, string | number | undefined>): string {
  const clean = path.replace(/^\/+/, "");
  if (clean.split("/").some((segment) => segment === "..")) {
    throw new Error(`apiUrl: ".." is not allowed in an API path: ${path}`);
  }
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined) query.set(key, String(value));
  }
  const qs = query.toString();
  return API_ROOT + clean + (qs ? `?${qs}` : "");
}
