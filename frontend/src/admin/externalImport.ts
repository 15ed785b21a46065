/** The "Import Label Studio or Argilla work" form's pure parts: the multipart body it posts to
 * /api/projects/{id}/imports/, the sentences and counts it shows for the answer, and where a 400's
 * errors go (a field, the top of the form, or a table of refused items). */
import { ApiError } from "../api";
import { fieldErrors } from "../ui/format";

export type ExternalFormat = "label_studio" | "argilla";

export const EXTERNAL_FORMATS: { value: ExternalFormat; label: string }[] = [
  { value: "label_studio", label: "Label Studio JSON export (Ranker or Pairwise)" },
  { value: "argilla", label: "Argilla ranking records (JSON, JSONL, or a packed dataset folder)" },
];

/** What the file input takes (the endpoint's EXTENSIONS). */
export const EXTERNAL_ACCEPT = ".json,.jsonl,.ndjson,.zip,.tar.gz,.tgz";

/** The optional fields, by their API name: sent only when filled. */
export const ADVANCED_FIELDS = [
  "annotators",
  "prompt_field",
  "completion_fields",
  "items_field",
  "bucket_order",
  "failed_buckets",
  "question",
  "eval_fraction",
] as const;
export type AdvancedField = (typeof ADVANCED_FIELDS)[number];
export type AdvancedValues = Partial<Record<AdvancedField, string>>;

export type ExternalImportOptions = {
  format: ExternalFormat;
  createMembers: boolean;
  skipBadItems: boolean;
  advanced: AdvancedValues;
};

/** The multipart body: file, format, on_error, create_members, and each advanced field that is filled. */
export function externalImportForm(file: Blob, fileName: string, options: ExternalImportOptions): FormData {
  const form = new FormData();
  form.append("file", file, fileName);
  form.append("format", options.format);
  form.append("on_error", options.skipBadItems ? "skip" : "fail");
  form.append("create_members", options.createMembers ? "true" : "false");
  for (const name of ADVANCED_FIELDS) {
    const value = options.advanced[name]?.trim();
    if (value) form.append(name, value);
  }
  return form;
}

/** One refused item (or annotator, or the file itself), as the import reports it. */
export type ImportProblem = { where: string; field: string | null; value: string | null; message: string };

/** The endpoint's 201 answer (ExternalImportOutput). */
export type ExternalImportResult = {
  format: string;
  items: number;
  comparisons_created: number;
  comparisons_existing: number;
  rankings_created: number;
  rankings_existing: number;
  rankings_existing_differ: number;
  unlabeled: number;
  left_out: Record<string, number>;
  skipped: number;
  skipped_items: Record<string, unknown>[];
  members: { matched: string[]; added: string[]; created: string[] };
};

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

function itemNoun(format: string): [string, string] {
  return format === "argilla" ? ["record", "records"] : ["task", "tasks"];
}

function names(list: string[]): string {
  return list.length ? list.join(", ") : "none";
}

export type ImportSummary = { headline: string; rows: { label: string; value: string }[]; problems: ImportProblem[] };

/** The sentence and the table of counts for an import's answer, and the items it skipped. */
export function importSummary(result: ExternalImportResult): ImportSummary {
  const [one, many] = itemNoun(result.format);
  const read = plural(result.items, one, many);
  const headline =
    result.comparisons_created || result.rankings_created
      ? `Imported ${plural(result.comparisons_created, "comparison")} and ${plural(result.rankings_created, "ranking")} from ${read}.`
      : `Nothing new in ${read}: everything ranked was imported before.`;
  const leftOut = Object.entries(result.left_out);
  const differ = result.rankings_existing_differ ? ` (${result.rankings_existing_differ.toLocaleString("en-US")} ordered otherwise in this file, kept as first imported)` : "";
  const rows = [
    { label: "Comparisons created", value: result.comparisons_created.toLocaleString("en-US") },
    { label: "Comparisons imported before", value: result.comparisons_existing.toLocaleString("en-US") },
    { label: "Rankings created", value: result.rankings_created.toLocaleString("en-US") },
    { label: "Rankings already here", value: `${result.rankings_existing.toLocaleString("en-US")}${differ}` },
    { label: `Unlabeled ${many}`, value: result.unlabeled.toLocaleString("en-US") },
    { label: "Annotations left out", value: leftOut.length ? leftOut.map(([why, n]) => `${why}: ${n.toLocaleString("en-US")}`).join(", ") : "none" },
    { label: `Skipped ${many}`, value: result.skipped.toLocaleString("en-US") },
    { label: "Members created (no password yet)", value: names(result.members.created) },
    { label: "Users made labelers", value: names(result.members.added) },
    { label: "Members matched", value: names(result.members.matched) },
  ];
  return { headline, rows, problems: result.skipped_items.map(toProblem) };
}

function show(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** An item error ({item, field, value?, message}), an annotator error ({annotator, username, message}),
 * or a file error ({item: null, message}) as one row of the problems table. */
function toProblem(raw: Record<string, unknown>): ImportProblem {
  const message = typeof raw.message === "string" ? raw.message : show(raw.message ?? "");
  if (typeof raw.annotator === "string") {
    return { where: `annotator ${raw.annotator}`, field: null, value: typeof raw.username === "string" ? raw.username : null, message };
  }
  return {
    where: typeof raw.item === "string" && raw.item ? raw.item : "the file",
    field: typeof raw.field === "string" ? raw.field : null,
    value: "value" in raw ? show(raw.value) : null,
    message,
  };
}

export type PlacedErrors = { fields: Record<string, string>; top: string | null; problems: ImportProblem[] };

/**
 * Where a failed import's errors go. `errors` as a list (refused items, unmatched annotators, a bad
 * file) is a table of problems under the detail sentence; as {field: [...]} each message goes to its
 * field when the form shows one (`shown`), else to the top of the form.
 */
export function placeImportErrors(error: unknown, shown: readonly string[]): PlacedErrors {
  if (error instanceof ApiError && Array.isArray(error.errors)) {
    const problems = error.errors.filter((e): e is Record<string, unknown> => !!e && typeof e === "object" && !Array.isArray(e)).map(toProblem);
    return { fields: {}, top: error.detail, problems };
  }
  const fields: Record<string, string> = {};
  const top: string[] = [];
  for (const [key, message] of Object.entries(fieldErrors(error))) {
    if (key && shown.includes(key)) fields[key] = message;
    else top.push(key ? `${key}: ${message}` : message);
  }
  return { fields, top: top.length ? top.join(" ") : null, problems: [] };
}
