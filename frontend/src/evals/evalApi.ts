/** The evaluation endpoints, and the registry versions an evaluation of a project may compare. */
import { api, type ModelVersion, type Page, type RegisteredModel } from "../api";
import type { EvalCreateBody, Evaluation, Results } from "./types";

export const evalApi = {
  list: (project?: number) => api.get<Page<Evaluation>>("evaluations/", { project, limit: 100 }),
  get: (id: number) => api.get<Evaluation>(`evaluations/${id}/`),
  results: (id: number) => api.get<Results>(`evaluations/${id}/results/`),
  publish: (id: number) => api.post<Evaluation>(`evaluations/${id}/publish/`),
  create: (sourceProject: number, body: EvalCreateBody) => api.post<Evaluation>(`projects/${sourceProject}/evaluations/`, body),
};

/** The causal LMs a run of `projectId` may use (its own and shared models), each with its versions. */
export async function usableVersions(projectId: number): Promise<{ model: RegisteredModel; versions: ModelVersion[] }[]> {
  const models = await api.get<Page<RegisteredModel>>("models/", { project: projectId, task: "causal-lm", limit: 100 });
  return Promise.all(
    models.results.map(async (model) => ({
      model,
      versions: (await api.get<Page<ModelVersion>>(`models/${model.id}/versions/`, { limit: 100 })).results,
    })),
  );
}
