/** The REST API client: same-origin session cookie + CSRF header, JSON in and out. */

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

/** An error answer of the API: `detail` is the sentence to show, `errors` the structured rest. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors?: unknown,
  ) {
    super(detail);
  }
}

/** A request that never reached the server or whose answer was lost (offline, connection reset). */
export class NetworkError extends Error {}

/** How far the server's clock is ahead of this device's, in ms, from the Date header of its last answer. */
let clockOffsetMs = 0;

/**
 * The clock offset a Date header implies (null without one). The header has whole seconds, so the
 * server's time lies in [D, D + 1 s): take the middle, and call anything under 2 s noise (0).
 */
export function clockOffset(dateHeader: string | null, localNow: number): number | null {
  if (!dateHeader) return null;
  const server = Date.parse(dateHeader);
  if (Number.isNaN(server)) return null;
  const offset = server + 500 - localNow;
  return Math.abs(offset) < 2000 ? 0 : Math.round(offset);
}

/** The server's time now, as best this device knows it (for lease expiries: the server decides them). */
export function serverNow(): number {
  return Date.now() + clockOffsetMs;
}

export function csrfToken(cookie: string = typeof document === "undefined" ? "" : document.cookie): string {
  const match = cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("csrftoken="));
  return match ? decodeURIComponent(match.slice("csrftoken=".length)) : "";
}

export async function request<T>(method: string, path: string, body?: unknown, params?: Record<string, string | number | undefined>): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const init: RequestInit = { method, headers, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(apiUrl(path, params), init);
  } catch (error) {
    throw new NetworkError(error instanceof Error ? error.message : String(error));
  }
  const offset = clockOffset(response.headers.get("Date"), Date.now());
  if (offset !== null) clockOffsetMs = offset;
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    if (!response.ok) throw new ApiError(response.status, `${response.status} ${response.statusText}`);
  }
  if (!response.ok) {
    const payload = (data ?? {}) as { detail?: string; errors?: unknown };
    throw new ApiError(response.status, payload.detail ?? `${response.status} ${response.statusText}`, payload.errors);
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, params?: Record<string, string | number | undefined>) => request<T>("GET", path, undefined, params),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  delete: <T>(path: string) => request<T>("DELETE", path),
};

/** Retry a request whose answer may have been lost: only network errors and 5xx, never a 4xx. The
 * server makes the retried operations idempotent (a repeated submit returns the first ranking). */
export async function withRetry<T>(call: () => Promise<T>, delaysMs: number[] = [300, 1000, 2000, 4000]): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const retryable = error instanceof NetworkError || (error instanceof ApiError && error.status >= 500);
      if (!retryable || attempt >= delaysMs.length) throw error;
      await new Promise((resolve) => setTimeout(resolve, delaysMs[attempt]));
    }
  }
}

/** Upload a multipart form with progress (fetch has no upload progress); resolves with the JSON body. */
export function upload<T>(path: string, form: FormData, onProgress: (fraction: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", apiUrl(path));
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onerror = () => reject(new NetworkError("The upload failed: the connection was lost."));
    xhr.onload = () => {
      let data: { detail?: string; errors?: unknown } = {};
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : {};
      } catch {
        /* not JSON: handled below */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data as T);
      else reject(new ApiError(xhr.status, data.detail ?? `${xhr.status} ${xhr.statusText}`, data.errors));
    };
    xhr.send(form);
  });
}

export type Page<T> = { count: number; next: string | null; previous: string | null; results: T[] };

export type Me = { id: number; username: string; email: string; is_staff: boolean; is_superuser: boolean };

export type Role = "admin" | "reviewer" | "labeler";

export type Project = {
  id: number;
  name: string;
  instructions: string;
  completions_per_prompt: number;
  overlap: number;
  lease_seconds: number;
  gold_rate: number;
  /** Share (0..1) of AI-labeled comparisons kept in the human queue for spot checks. */
  ai_spot_check_rate: number;
  rank_per_criterion: boolean;
  prompt_template: number | null;
  generation_config: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  role: Role | null;
};

export type Criterion = { id: number; name: string; instructions: string; position: number };

/** One principle of a constitution (see labeling/principles.py). */
export type Principle = {
  key: string;
  name: string;
  critique_request: string;
  revision_request: string;
  choice_question: string;
};

/** GET /api/projects/{id}/constitutions/: one saved version (versions never change). */
export type Constitution = {
  id: number;
  project: number;
  version: number;
  principles: Principle[];
  note: string;
  created_by: string | null;
  created_at: string;
};

/** An agreement count of the AI audit: `rate` is agreements / pairs, null when no pair counted. */
export type AgreementRate = { rate: number | null; agreements: number; pairs: number };

/** One row of the AI audit: a principle key, or "all" for the overall row. */
export type AuditRow = {
  principle: string;
  ai_labels: number;
  shared_with_humans: number;
  shared_with_imported: number;
  ai_human_agreement: AgreementRate;
  human_human_agreement: AgreementRate;
  ai_imported_agreement: AgreementRate;
  disagreements: number;
};

/** GET /api/projects/{id}/stats/ai-audit/ */
export type AiAudit = { project: number; spot_check_rate: number; overall: AuditRow; principles: AuditRow[] };

/** An order as the audit reports it: {completion_id: score}, lower is better; "F" marks nonsense. */
export type ScoreOrder = Record<string, number | "F">;

/** GET /api/projects/{id}/stats/ai-audit/disagreements/ */
export type Disagreement = {
  comparison: number;
  prompt: string;
  split: string;
  completions: { id: number; position: number; text: string }[];
  principle: string;
  ai: {
    order: ScoreOrder;
    details: {
      principle?: string | null;
      probability?: number;
      pairs?: { a: number; b: number; p_a: number }[];
      constitution?: number | null;
      run?: number | null;
    };
  };
  people: { source: "human" | "imported" | string; labeler: number; order: ScoreOrder }[];
};

/** One round of a cai_revise run: the principle, its critique and the revision after it. */
export type RevisionRound = {
  principle: string;
  critique_request: string;
  critique: string;
  revision_request: string;
  revision: string;
};

/** GET /api/runs/{id}/revisions/ */
export type RevisionSample = {
  id?: number;
  prompt_id: number | string | null;
  prompt: string;
  initial: string;
  rounds: RevisionRound[];
  final: string;
};

/** Page size of the review lists (disagreements, revisions). */
export const REVIEW_PAGE = 20;

/** Constitutions of a project: versions newest first, a new version, the shipped default. */
export const constitutionApi = {
  list: (projectId: number) => api.get<Page<Constitution>>(`projects/${projectId}/constitutions/`, { limit: 200 }),
  create: (projectId: number, body: { principles: Principle[]; note: string }) =>
    api.post<Constitution>(`projects/${projectId}/constitutions/`, body),
  default: (projectId: number) => api.get<{ principles: Principle[] }>(`projects/${projectId}/constitutions/default/`),
};

/** The AI labeler's audit: agreement per principle, and the comparisons where AI and people disagree. */
export const aiAuditApi = {
  get: (projectId: number) => api.get<AiAudit>(`projects/${projectId}/stats/ai-audit/`),
  disagreements: (projectId: number, { principle, offset = 0, limit = REVIEW_PAGE }: { principle?: string | null; offset?: number; limit?: number } = {}) =>
    api.get<Page<Disagreement>>(`projects/${projectId}/stats/ai-audit/disagreements/`, { principle: principle || undefined, limit, offset }),
};

/** A cai_revise run's stored samples; `principle` keeps those a round used it on. */
export function runRevisions(runId: number, { principle, offset = 0, limit = REVIEW_PAGE }: { principle?: string | null; offset?: number; limit?: number } = {}) {
  return api.get<Page<RevisionSample>>(`runs/${runId}/revisions/`, { principle: principle?.trim() || undefined, limit, offset });
}

/** GET /api/runs/kinds/: one config field of a run kind, read off its config class (training.ml). */
export type RunConfigField = {
  name: string;
  /** The Python annotation: "int", "float | None", "str", "bool", "list[str] | None", "list", "dict", ... */
  type: string;
  default: unknown;
  required: boolean;
  /** The platform sets it from an input (model_path from base_version, ...): never sent by a form. */
  filled_by_inputs: boolean;
  /** Names a file or folder on the workers: only platform admins may set it. */
  worker_path: boolean;
};

/** GET /api/runs/kinds/: a kind a person can start, the inputs it takes (`hints`: what an input means
 * for this kind, training/kinds.py) and its config fields. */
export type RunKindSpec = {
  kind: string;
  description: string;
  inputs: string[];
  hints: Record<string, string>;
  /** How the inputs combine (one or the other), shown above them; "" for none. */
  inputs_note: string;
  /** Version input -> the registry tasks it accepts (the server refuses the others). */
  version_tasks: Record<string, string[]>;
  /** Whether base_version may be an adapter version. */
  adapter_base: boolean;
  /** The config fields a form shows up front; the rest sit behind "Advanced". */
  common_config: string[];
  config: RunConfigField[];
};

/** POST /api/runs/ (`round`: the id of a round of the same project the run joins; left out for none). */
export type RunStartBody = { kind: string; project: number; config: Record<string, unknown>; inputs: Record<string, unknown>; round?: number };

/** The part of POST /api/runs/'s 202 answer (the queued run) a form needs. */
export type StartedRun = { id: number; kind: string; state: string; project: number | null };

/** GET /api/models/ */
export type RegisteredModel = {
  id: number;
  name: string;
  task: string;
  description: string;
  created_by: string | null;
  created_at: string;
  version_count: number;
  latest_version: number | null;
  aliases: Record<string, number>;
};

/** GET /api/models/{id}/versions/ */
export type ModelVersion = {
  id: number;
  model: number;
  model_name: string;
  version: number;
  format: string;
  base_version: number | null;
  is_adapter: boolean;
  merged: boolean;
  tags: string[];
  aliases: string[];
  created_at: string;
};

/** Starting runs: the kinds with their inputs and config fields, and POST /api/runs/ (202, queued). */
export const runsApi = {
  kinds: () => api.get<RunKindSpec[]>("runs/kinds/"),
  start: (body: RunStartBody) => api.post<StartedRun>("runs/", body),
};

/** Every registered model with its versions (newest first): up to 100 models, 100 versions each. */
export async function registryVersions(): Promise<{ model: RegisteredModel; versions: ModelVersion[] }[]> {
  const models = await api.get<Page<RegisteredModel>>("models/", { limit: 100 });
  return Promise.all(
    models.results.map(async (model) => ({
      model,
      versions: (await api.get<Page<ModelVersion>>(`models/${model.id}/versions/`, { limit: 100 })).results,
    })),
  );
}
