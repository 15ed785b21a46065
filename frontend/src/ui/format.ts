/** Turning API errors into what the UI shows (a sentence, messages per field, errors per line); bytes and dates. */
import { ApiError } from "../api";

/** One bad line of an upload, as the import APIs report it. */
export type RowError = { line: number | null; field: string | null; message: string };

/** The sentence to show for any error (an ApiError's `detail`, else the message). */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Messages per form field from an ApiError's `errors` (`{field: ["msg", ...]}`, DRF style, possibly
 * nested one level as `{field: {inner: [...]}}`). Several messages for a field are joined by a space.
 * Anything not keyed by field (a list, non_field_errors) lands under "" so a form can show it at the top.
 */
export function fieldErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(error instanceof ApiError)) {
    if (error) out[""] = errorText(error);
    return out;
  }
  const errors = error.errors;
  const flatten = (value: unknown): string[] => {
    if (value === null || value === undefined) return [];
    if (Array.isArray(value)) return value.flatMap(flatten);
    if (typeof value === "object") {
      const v = value as Record<string, unknown>;
      if (typeof v.message === "string") return [v.message];
      return Object.entries(v).flatMap(([key, inner]) => flatten(inner).map((m) => `${key}: ${m}`));
    }
    return [String(value)];
  };
  if (errors && typeof errors === "object" && !Array.isArray(errors)) {
    for (const [key, value] of Object.entries(errors as Record<string, unknown>)) {
      const messages = flatten(value);
      if (messages.length === 0) continue;
      const target = key === "non_field_errors" || key === "detail" ? "" : key;
      out[target] = out[target] ? `${out[target]} ${messages.join(" ")}` : messages.join(" ");
    }
  }
  if (Object.keys(out).length === 0) out[""] = error.detail;
  return out;
}

/** The per-line errors of an import (`errors: [{line, field, message}]`), or [] for any other error. */
export function rowErrors(error: unknown): RowError[] {
  if (!(error instanceof ApiError) || !Array.isArray(error.errors)) return [];
  return error.errors
    .filter((e): e is Record<string, unknown> => !!e && typeof e === "object")
    .map((e) => ({
      line: typeof e.line === "number" ? e.line : null,
      field: typeof e.field === "string" ? e.field : null,
      message: typeof e.message === "string" ? e.message : String(e.message ?? ""),
    }));
}

/** "line 7, field 'dialogue'" — where a row error is, in the server's own words. */
export function rowErrorPlace(error: RowError): string {
  const parts: string[] = [];
  if (error.line !== null) parts.push(`line ${error.line}`);
  if (error.field !== null) parts.push(`field '${error.field}'`);
  return parts.join(", ") || "the file";
}

/** Parse the few-shot examples editor: a JSON list of objects, or an error that says what is wrong. */
export function parseExamples(text: string): { value: Record<string, unknown>[] } | { error: string } {
  if (!text.trim()) return { value: [] };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { error: `Not valid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!Array.isArray(data)) return { error: "Must be a JSON list of objects, e.g. [{\"dialogue\": \"...\", \"summary\": \"...\"}]." };
  const bad = data.findIndex((item) => !item || typeof item !== "object" || Array.isArray(item));
  if (bad >= 0) return { error: `Item ${bad} is not an object of field values.` };
  return { value: data as Record<string, unknown>[] };
}

/** 1536 -> "1.5 KB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Short local date-time for tables. */
export function formatWhen(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleString("en-US", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
