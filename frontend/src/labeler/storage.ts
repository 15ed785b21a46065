/** What survives a reload of the workspace, per assignment: marks, comment, when the task started. */
import type { SavedRanking } from "./ranking";

export type SavedTask = { ranking: SavedRanking; comment: string; startedAt: number };

const key = (assignmentId: number) => `rankforge.labeler.assignment.${assignmentId}`;

export function loadTask(assignmentId: number): Partial<SavedTask> | null {
  try {
    const raw = sessionStorage.getItem(key(assignmentId));
    const data = raw ? (JSON.parse(raw) as unknown) : null;
    return data && typeof data === "object" ? (data as Partial<SavedTask>) : null;
  } catch {
    return null;
  }
}

export function saveTask(assignmentId: number, task: SavedTask): void {
  try {
    sessionStorage.setItem(key(assignmentId), JSON.stringify(task));
  } catch {
    /* storage full or disabled: the task just won't survive a reload */
  }
}

export function forgetTask(assignmentId: number): void {
  try {
    sessionStorage.removeItem(key(assignmentId));
  } catch {
    /* ignore */
  }
}
