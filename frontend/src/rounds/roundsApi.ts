/** The rounds endpoints and the guard report of an RLHF run. */
import { api } from "../api";
import type { GuardReport, Round, RoundStartBody } from "./types";

export const roundsApi = {
  list: (projectId: number) => api.get<Round[]>(`projects/${projectId}/rounds/`),
  get: (roundId: number) => api.get<Round>(`rounds/${roundId}/`),
  start: (projectId: number, body: RoundStartBody) => api.post<Round>(`projects/${projectId}/rounds/`, body),
  guard: (runId: number) => api.get<GuardReport>(`runs/${runId}/guard/`),
};
