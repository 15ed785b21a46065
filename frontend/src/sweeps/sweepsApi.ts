/** The sweeps endpoints (training/urls.py: sweeps/, sweeps/kinds/, sweeps/{id}/, sweeps/{id}/cancel/). */
import { api, type Page } from "../api";
import type { Sweep, SweepDetail, SweepKind, SweepStartBody } from "./types";

export const sweepsApi = {
  /** Sweeps you can see, newest first (of one project when `project` is given). */
  list: (project?: number) => api.get<Page<Sweep>>("sweeps/", { project, limit: 100 }),
  get: (id: number) => api.get<SweepDetail>(`sweeps/${id}/`),
  kinds: () => api.get<SweepKind[]>("sweeps/kinds/"),
  start: (body: SweepStartBody) => api.post<Sweep>("sweeps/", body),
  cancel: (id: number) => api.post<Sweep>(`sweeps/${id}/cancel/`),
};
