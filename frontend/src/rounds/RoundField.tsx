/** The optional "Round" select of the start-run and new-evaluation forms: the project's rounds
 * (GET /api/projects/{id}/rounds/), newest first, "None" by default. The rules live in join.ts. */
import { Field } from "../ui/components";
import { errorText } from "../ui/format";
import { useLoad } from "../ui/hooks";
import { roundChoices } from "./join";
import { roundsApi } from "./roundsApi";

type Props = {
  /** The project whose rounds are offered; null before one is chosen. */
  projectId: number | null;
  value: string;
  onChange: (value: string) => void;
  error?: string;
  /** What joining means for this form ("The run counts in that round's figures."). */
  hint: string;
};

export function RoundField({ projectId, value, onChange, error, hint }: Props) {
  const rounds = useLoad(async () => (projectId ? roundsApi.list(projectId) : []), `rounds:${projectId}`);
  const choices = roundChoices(rounds.data ?? []);
  const note = !projectId
    ? "Choose the project first: its rounds are listed."
    : rounds.error
      ? `The rounds could not be loaded: ${errorText(rounds.error)}`
      : rounds.data && choices.length === 0
        ? "This project has no rounds yet."
        : hint;
  return (
    <Field label="Round" error={error} hint={note}>
      <select value={value} onChange={(e) => onChange(e.target.value)} disabled={!projectId}>
        <option value="">None</option>
        {choices.map((c) => (
          <option key={c.value} value={c.value}>
            {c.label}
          </option>
        ))}
      </select>
    </Field>
  );
}
