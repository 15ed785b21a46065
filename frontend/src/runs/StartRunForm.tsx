/**
 * Start a training run (POST /api/runs/) from a project's Runs tab: pick a kind, fill the inputs it
 * lists (registry versions, a snapshot, a dataset, templates, the constitution, ...) with pickers, and
 * change the config fields you need (each shows its default; untouched ones are not sent). A 400 puts
 * each error next to its field; a 202 opens the new run's page. An optional "Round" makes the run join
 * one of the project's rounds of the loop (`round`, sent only when chosen). The rules live in startRun.ts;
 * the pickers and the config table, shared with the sweep form, in RunFormParts.tsx.
 */
import { useState, type FormEvent } from "react";
import { runsApi } from "../api";
import { navigate } from "../router";
import { RoundField } from "../rounds/RoundField";
import { ErrorNote, Field } from "../ui/components";
import { useLoad } from "../ui/hooks";
import { ConfigFieldset, InputsFieldset, StartActions, usePickerSources, useRunFormErrors } from "./RunFormParts";
import { buildRunRequest, fieldName, mapRunErrors, splitConfig, type InputValue } from "./startRun";

export function StartRunForm({ projectId, onCancel }: { projectId: number; onCancel: () => void }) {
  const kinds = useLoad(() => runsApi.kinds(), "run-kinds");
  const [kind, setKind] = useState("");
  const spec = kinds.data?.find((k) => k.kind === kind) ?? null;
  const [inputs, setInputs] = useState<Record<string, InputValue>>({});
  const [config, setConfig] = useState<Record<string, string | boolean>>({});
  const [round, setRound] = useState("");
  const [showAdvanced, setShowAdvanced] = useState(false);
  const [sending, setSending] = useState(false);
  const sources = usePickerSources(projectId, spec);
  const { common, advanced } = spec ? splitConfig(spec) : { common: [], advanced: [] };
  const { errors, setErrors, clearError, showErrors, formRef } = useRunFormErrors(advanced, () => setShowAdvanced(true));

  const setInput = (name: string, value: InputValue) => {
    setInputs((current) => ({ ...current, [name]: value }));
    clearError(`inputs.${name}`);
  };
  const chooseRound = (value: string) => {
    setRound(value);
    clearError("round");
  };
  const setConfigValue = (name: string, value: string | boolean) => {
    setConfig((current) => ({ ...current, [name]: value }));
    clearError(`config.${name}`);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!spec) {
      showErrors({ kind: "Choose the kind of run to start." });
      return;
    }
    const built = buildRunRequest(spec, projectId, { inputs, config, round });
    if (built.errors) {
      showErrors(built.errors);
      return;
    }
    setSending(true);
    setErrors({});
    try {
      const run = await runsApi.start(built.body);
      navigate(`/projects/${projectId}/admin/runs/${run.id}`);
    } catch (error) {
      setSending(false);
      showErrors(mapRunErrors(error, spec));
    }
  };

  const fieldErrorKeys = Object.keys(errors).filter((k) => k !== "");
  const general =
    errors[""] ?? (fieldErrorKeys.length ? `Not started: see ${fieldErrorKeys.length === 1 ? "the error at" : "the errors at"} ${fieldErrorKeys.map(fieldName).join(", ")}.` : "");

  return (
    <form ref={formRef} className="card form start-run" onSubmit={submit} aria-label="Start a run" noValidate>
      <div className="editor-head">
        <h2>Start a run</h2>
      </div>
      <p className="muted small">
        The run is queued for a worker; its page follows it. Inputs are named by id and checked by the server; config fields left empty keep their
        defaults.
      </p>
      <ErrorNote error={kinds.error} />
      {kinds.loading && !kinds.data && <p role="status">Loading the run kinds…</p>}
      {kinds.data && (
        <div className="row kind-row">
          <Field label="Kind" error={errors.kind} hint={spec?.description || "What the run does."}>
            <select
              value={kind}
              onChange={(e) => {
                setKind(e.target.value);
                setConfig({});
                setErrors({});
                setShowAdvanced(false);
              }}
            >
              <option value="">Choose a kind…</option>
              {kinds.data.map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.kind}
                </option>
              ))}
            </select>
          </Field>
          <RoundField projectId={projectId} value={round} onChange={chooseRound} error={errors.round} hint="Optional: the round of the loop this run belongs to; it counts in that round’s figures." />
        </div>
      )}
      {spec && (
        <>
          <InputsFieldset legend="Inputs" spec={spec} values={inputs} errors={errors} sources={sources} onChange={setInput} />
          <ConfigFieldset
            legend="Config"
            label="Config"
            common={common}
            advanced={advanced}
            values={config}
            errors={errors}
            onChange={setConfigValue}
            showAdvanced={showAdvanced}
            onToggleAdvanced={() => setShowAdvanced((open) => !open)}
          />
        </>
      )}
      <StartActions general={general} testId="start-run-error" sending={sending} ready={!!kinds.data} label="Start run" onCancel={onCancel} />
    </form>
  );
}

