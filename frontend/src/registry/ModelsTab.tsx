/**
 * The console's Models tab: the registry's models this project may use (its own and the shared
 * ones, GET /api/models/?project=), and for the model you open its versions (GET
 * /api/models/{id}/versions/): aliases and tags, format, the run and snapshot that made it, the
 * version it comes from, its scalar metrics, and the human side-by-side evaluations published on it
 * with the Bradley-Terry score, rank and win rate against each other version. Where the server has
 * no registry (404) the tab says so plainly. The formatting rules live in registry.ts.
 */
import { Fragment, useState } from "react";
import { ApiError, api, type Page } from "../api";
import { Link } from "../router";
import { ErrorNote } from "../ui/components";
import { formatBytes, formatWhen } from "../ui/format";
import { useLoad } from "../ui/hooks";
import {
  baseLabel,
  evalName,
  formatAgainst,
  formatMetrics,
  formatModelAliases,
  formatRank,
  formatScore,
  formatVersionCount,
  humanEvals,
  sourceRun,
  type HumanEval,
  type RegistryModel,
  type RegistryVersion,
} from "./registry";

const read = <T,>(page: Page<T> | T[]) => (Array.isArray(page) ? page : page.results);

async function loadModels(projectId: number): Promise<RegistryModel[]> {
  return read(await api.get<Page<RegistryModel> | RegistryModel[]>("models/", { project: projectId, limit: 100 }));
}

async function loadVersions(modelId: number): Promise<RegistryVersion[]> {
  return read(await api.get<Page<RegistryVersion> | RegistryVersion[]>(`models/${modelId}/versions/`, { limit: 100 }));
}

export function ModelsTab({ projectId }: { projectId: number }) {
  const models = useLoad(() => loadModels(projectId), `models:${projectId}`);
  const [opened, setOpened] = useState<number | null>(null);

  if (models.error instanceof ApiError && models.error.status === 404) {
    return (
      <section className="card">
        <h2>Models</h2>
        <p role="status">
          Models are not available yet: this server has no <code>/api/models/</code> endpoint (it answered 404). They arrive with the model registry API.
        </p>
      </section>
    );
  }
  const list = models.data;
  // With a single model there is nothing to choose: its versions are shown at once.
  const openId = opened ?? (list?.length === 1 ? list[0].id : null);
  const open = list?.find((m) => m.id === openId) ?? null;

  return (
    <div className="stack registry">
      <section className="card">
        <h2>Models</h2>
        <p className="muted small">Registered models this project may use: its own and the shared ones. Open one for its versions and the human evaluations published on them.</p>
        <ErrorNote error={models.error} />
        {!list && !models.error && <p role="status">Loading models…</p>}
        {list?.length === 0 && <p role="status">None yet.</p>}
        {list && list.length > 0 && (
          <table className="table" aria-label="Models">
            <thead>
              <tr>
                <th>name</th>
                <th>task</th>
                <th>versions</th>
                <th>aliases</th>
                <th>created at</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.id} data-model={m.id} className={m.id === openId ? "selected" : undefined}>
                  <td>
                    <button type="button" className="link" aria-expanded={m.id === openId} onClick={() => setOpened(m.id === openId ? -1 : m.id)}>
                      {m.id === openId ? "▾" : "▸"} {m.name}
                    </button>
                    {m.shared && <span className="muted small"> · shared</span>}
                  </td>
                  <td>{m.task}</td>
                  <td>{formatVersionCount(m)}</td>
                  <td>{formatModelAliases(m.aliases)}</td>
                  <td>{formatWhen(m.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {open && <VersionsCard key={open.id} model={open} projectId={projectId} />}
    </div>
  );
}

function VersionsCard({ model, projectId }: { model: RegistryModel; projectId: number }) {
  const versions = useLoad(() => loadVersions(model.id), `versions:${model.id}`);
  const list = versions.data;
  const known = new Map((list ?? []).map((v) => [v.id, v]));
  const COLUMNS = 8;
  return (
    <section className="card" aria-label={`Versions of ${model.name}`}>
      <h2>Versions of {model.name}</h2>
      {model.description && <p className="muted small">{model.description}</p>}
      <ErrorNote error={versions.error} />
      {!list && !versions.error && <p role="status">Loading versions…</p>}
      {list?.length === 0 && <p role="status">No version yet.</p>}
      {list && list.length > 0 && (
        <table className="table registry-versions" aria-label={`Versions of ${model.name}`}>
          <thead>
            <tr>
              <th>version</th>
              <th>aliases · tags</th>
              <th>format</th>
              <th>source</th>
              <th>base version</th>
              <th>metrics</th>
              <th>size</th>
              <th>created at</th>
            </tr>
          </thead>
          <tbody>
            {list.map((v) => {
              const evals = humanEvals(v.metrics);
              const metrics = formatMetrics(v.metrics);
              const run = sourceRun(v, projectId);
              return (
                <Fragment key={v.id}>
                  <tr data-version={v.id}>
                    <td>v{v.version}</td>
                    <td>
                      {v.aliases.map((a) => (
                        <span key={a} className="chip">
                          {a}
                        </span>
                      ))}
                      {v.tags.length > 0 && <span className="muted small"> {v.tags.join(", ")}</span>}
                      {v.aliases.length === 0 && v.tags.length === 0 && "—"}
                    </td>
                    <td>
                      {v.format}
                      {v.is_adapter && <span className="muted small"> · adapter{v.merged ? ", merged" : ""}</span>}
                    </td>
                    <td data-cell="source">
                      {run ? run.href ? <Link href={run.href}>{run.label}</Link> : run.label : v.source_snapshot_id ? null : "—"}
                      {v.source_snapshot_id ? <span className="muted small">{run ? " · " : ""}snapshot {v.source_snapshot_id}</span> : null}
                    </td>
                    <td data-cell="base">
                      <BaseCell version={v} known={known} />
                    </td>
                    <td className="small" title={metrics.all || undefined} data-cell="metrics">
                      {metrics.text}
                      {metrics.more > 0 && <span className="muted"> · +{metrics.more} more</span>}
                    </td>
                    <td>{typeof v.size_bytes === "number" ? formatBytes(v.size_bytes) : "—"}</td>
                    <td>{formatWhen(v.created_at)}</td>
                  </tr>
                  {evals.length > 0 && (
                    <tr className="version-evals" data-version-evals={v.id}>
                      <td colSpan={COLUMNS}>
                        {evals.map((e) => (
                          <HumanEvalBlock key={e.evaluation} evaluation={e} versionLabel={`${model.name} v${v.version}`} />
                        ))}
                      </td>
                    </tr>
                  )}
                </Fragment>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

type Lineage = { lineage?: { id: number; model_name: string | null; version: number | null; hidden?: boolean }[] };

/** The base version's name: from this model's versions when it is one of them, else from the
 * version's lineage (GET .../versions/{n}/), which names another model's base. */
function BaseCell({ version, known }: { version: RegistryVersion; known: Map<number, RegistryVersion> }) {
  const local = version.base_version !== null && known.has(version.base_version);
  const needLineage = version.base_version !== null && !local;
  const lineage = useLoad(
    async () => (needLineage ? api.get<Lineage>(`models/${version.model}/versions/${version.version}/`) : null),
    `lineage:${version.id}:${needLineage}`,
  );
  if (version.base_version === null) return <>—</>;
  const nearest = lineage.data?.lineage?.[0];
  if (!local && nearest && nearest.id === version.base_version && !nearest.hidden && nearest.model_name) {
    return <>{`${nearest.model_name} v${nearest.version}`}</>;
  }
  return <>{baseLabel(version, known)}</>;
}

function HumanEvalBlock({ evaluation, versionLabel }: { evaluation: HumanEval; versionLabel: string }) {
  const name = evalName(evaluation);
  return (
    <div className="human-eval" data-evaluation={evaluation.evaluation}>
      <p className="human-eval-head">
        Human evaluation <Link href={`/evaluations/${evaluation.evaluation}`}>{name}</Link>
        {evaluation.published_at && <span className="muted small"> · published {formatWhen(evaluation.published_at)}</span>}
      </p>
      {evaluation.criteria.length === 0 ? (
        <p className="muted small">No verdict was published.</p>
      ) : (
        <table className="table compact" aria-label={`${name}: ${versionLabel}`}>
          <thead>
            <tr>
              <th>criterion</th>
              <th title="Bradley-Terry score on the Elo scale (mean 1000), with its 95% interval">score [95%]</th>
              <th>rank</th>
              <th>votes</th>
              <th title="How often people preferred this version (ties count half), with the 95% interval">win rate vs each other version</th>
            </tr>
          </thead>
          <tbody>
            {evaluation.criteria.map((c) => (
              <tr key={c.criterion} data-criterion={c.criterion}>
                <td>{c.criterion}</td>
                <td data-cell="score">{formatScore(c)}</td>
                <td data-cell="rank">{formatRank(c.rank)}</td>
                <td>{c.votes}</td>
                <td data-cell="against">
                  {c.against.length === 0
                    ? "—"
                    : c.against.map((a) => (
                        <div key={a.version} data-against={a.version}>
                          {formatAgainst(a)}
                        </div>
                      ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
