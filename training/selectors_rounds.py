"""Reads of rounds: each round side by side with the figures of its steps.

A round's figures come from what its steps left: the comparisons its generation run made and the
human rankings on them (pairs collected, agreement), its runs' result metrics (reward-model
accuracy, held-out reward, KL), the versions they registered, the side-by-side evaluations linked
to it (the human win rate of the new version against the round's base), and the guard: the
people's verdict on the RLHF run's best- and worst-scored samples, and the flags.
"""

from collections import defaultdict

from django.db.models import QuerySet

from contracts.orders import read_orders
from labeling import agreement, side_by_side
from labeling.models import Comparison, Completion, LabelSource, PromptRow, Ranking
from labeling.selectors import side_by_side as sxs_selectors
from models_registry.models import ModelVersion
from training.ml import guard
from training.models import Round, RunKind, TrainingRun
from training.services.rounds import latest_run, rlhf_samples

RUN_METRICS = (
    "eval_accuracy",
    "eval_mean_margin",
    "reward_first",
    "reward_final",
    "eval_reward_before",
    "eval_reward_after",
    "eval_heldout_reward_before",
    "eval_heldout_reward_after",
    "eval_reward_gain",
    "eval_reward_gain_low",
    "eval_reward_gain_high",
    "eval_kl_after",
    "kl_final",
    "eval_loss",
)
# The list reads only pairwise win rates (Wilson intervals, from counts): no Bradley-Terry bootstrap,
# so a page that polls the rounds list costs counting votes, not resampling them.
SUMMARY_BOOTSTRAP = 0


def rounds_for_project(*, project_id: int) -> QuerySet[Round]:
    return Round.objects.filter(project_id=project_id).select_related("base_version__model").order_by("number")


def _metrics(run: TrainingRun) -> dict:
    result = (run.outputs or {}).get("result") or {}
    metrics = result.get("metrics") or {}
    return {k: metrics[k] for k in RUN_METRICS if isinstance(metrics.get(k), int | float)}


def _by_item(rankings) -> dict:
    by_item: dict = defaultdict(dict)
    for comparison_id, labeler_id, orders in rankings:
        for order in read_orders(orders).orders:  # malformed orders left out
            by_item[(comparison_id, order.criterion)][labeler_id] = order.scores
    return by_item


def _labeling(round_: Round) -> dict:
    comparisons = Comparison.objects.filter(project_id=round_.project_id, metadata__run_id=round_.generation_run_id)
    rankings = list(
        Ranking.objects.filter(comparison__in=comparisons, source=LabelSource.HUMAN).values_list(
            "comparison_id", "labeler_id", "orders"
        )
    )
    by_item = _by_item(rankings)
    pairs = sum(len(agreement.strict_pairs(order)) for orders in by_item.values() for order in orders.values())
    shared = agreement.pairwise_agreement(by_item)
    return {
        "comparisons": comparisons.count(),
        "rankings": len(rankings),
        "pairs": pairs,
        "agreement": shared.rate,
        "agreement_pairs": shared.pairs,
    }


def _version_row(version: ModelVersion) -> dict:
    return {"id": version.pk, "model": version.model.name, "number": version.version, "label": str(version)}


def _human_win_rate(round_: Round, versions: list[ModelVersion]) -> dict | None:
    """The newest linked evaluation's verdict on a version this round made against its base."""
    made = {v.pk for v in versions}
    for evaluation in round_.evaluations.order_by("-id"):
        results = sxs_selectors.evaluation_results(evaluation, rounds=SUMMARY_BOOTSTRAP)
        entries = {e["id"]: e["version"] for e in results["entries"]}
        for verdict in results["human"][:1]:  # overall, or the first criterion
            for pair in verdict["pairs"]:
                a, b = entries[pair["a"]], entries[pair["b"]]
                if {a, b} & made and round_.base_version_id in (a, b):
                    new_is_a = a in made
                    rate = pair["win_rate"] if new_is_a else 1 - pair["win_rate"]
                    low, high = (pair["low"], pair["high"]) if new_is_a else (1 - pair["high"], 1 - pair["low"])
                    return {
                        "evaluation": evaluation.pk,
                        "version": a if new_is_a else b,
                        "against": round_.base_version_id,
                        "criterion": verdict["name"],
                        "win_rate": rate,
                        "low": low,
                        "high": high,
                        "n": pair["n"],
                    }
    return None


def guard_verdict(run_id: int) -> dict:
    """People's votes on a run's guard comparisons: the policy's win rate on its best- and
    worst-scored samples (wherever the next round put them)."""
    result = {}
    for which in ("best", "worst"):
        comparisons = list(
            Comparison.objects.filter(metadata__guard=which, metadata__run=run_id).values_list("pk", flat=True)
        )
        policy = dict(
            Completion.objects.filter(comparison_id__in=comparisons, metadata__source="policy").values_list(
                "comparison_id", "pk"
            )
        )
        other = dict(
            Completion.objects.filter(comparison_id__in=comparisons, metadata__source="reference").values_list(
                "comparison_id", "pk"
            )
        )
        won, n = 0.0, 0
        for comparison_id, orders in Ranking.objects.filter(
            comparison_id__in=comparisons, source=LabelSource.HUMAN
        ).values_list("comparison_id", "orders"):
            for order in orders[:1] if isinstance(orders, list) else ():
                outcome = side_by_side.outcome_of(order, policy.get(comparison_id), other.get(comparison_id))
                if outcome is not None:
                    won += side_by_side.points(outcome)
                    n += 1
        low, high = side_by_side.wilson(won, n)
        result[which] = {
            "comparisons": len(comparisons),
            "votes": n,
            "policy_win_rate": won / n if n else None,
            "low": low,
            "high": high,
        }
    return result


def prompt_groups(run: TrainingRun, samples: list[dict] | None = None) -> dict:
    """``{prompt_id: group}`` from the ``group`` field of the prompt rows an RLHF run read (e.g.
    helpful / harmless): what the over-refusal rate compares."""
    samples = rlhf_samples(run) if samples is None else samples
    ids = [s["prompt_id"] for s in samples if isinstance(s.get("prompt_id"), int)]
    return {
        pk: data.get("group")
        for pk, data in PromptRow.objects.filter(pk__in=ids, dataset__project_id=run.project_id).values_list(
            "pk", "data"
        )
        if isinstance(data, dict) and isinstance(data.get("group"), str)
    }


def run_guard(run: TrainingRun, human: dict | None = None, groups: dict | None = None) -> dict:
    """The guard's report on an RLHF run: text rates before/after, the people's verdict on its
    extremes, and the flags."""
    samples = rlhf_samples(run)
    report = guard.report(samples, prompt_groups(run, samples) if groups is None else groups)
    verdict = guard_verdict(run.pk)
    best = verdict["best"]
    humans = human
    if humans is None and best["votes"]:
        humans = {"win_rate": best["policy_win_rate"], "n": best["votes"], "source": "votes on its best-scored samples"}
    report.pop("best"), report.pop("worst")
    return {"run": run.pk, **report, "people": verdict, "flags": guard.flags(report, _metrics(run), humans)}


def round_summary(round_: Round) -> dict:
    runs = list(round_.runs.order_by("id"))
    versions = list(ModelVersion.objects.filter(source_run_id__in=[r.pk for r in runs]).select_related("model"))
    reward = latest_run(round_, (RunKind.REWARD_MODEL,))
    policy = latest_run(round_, (RunKind.RLHF, RunKind.DPO))
    human = _human_win_rate(round_, versions)
    rlhf = latest_run(round_, (RunKind.RLHF,))
    human_vote = human and {"win_rate": human["win_rate"], "n": human["n"], "source": "side-by-side evaluation"}
    return {
        "id": round_.pk,
        "number": round_.number,
        "project": round_.project_id,
        "previous": round_.previous_id,
        "base_version": _version_row(round_.base_version),
        "note": round_.note,
        "created_at": round_.created_at,
        "generation_run": round_.generation_run_id,
        "runs": [{"id": r.pk, "kind": r.kind, "state": r.state, "metrics": _metrics(r)} for r in runs],
        "labeling": _labeling(round_),
        "reward_model": reward and {"run": reward.pk, **_metrics(reward)},
        "policy": policy and {"run": policy.pk, "kind": policy.kind, **_metrics(policy)},
        "versions": [_version_row(v) for v in versions],
        "snapshots": sorted({r.inputs["snapshot"] for r in runs if isinstance((r.inputs or {}).get("snapshot"), int)}),
        "evaluations": list(round_.evaluations.values_list("pk", flat=True)),
        "human_win_rate": human,
        "guard_samples": round_.guard,
        "guard": rlhf and run_guard(rlhf, human_vote),
    }
