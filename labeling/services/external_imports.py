"""Importing rankings made in Label Studio or Argilla: each task / record becomes a comparison, each
annotator's answer a ranking by the project member that annotator is.

Consistent with the preference import (labeling.services.preferences): rankings are stored with
``source="imported"`` and no assignment, and they do not use up human slots (``label_count`` stays
as it is), so they flow through snapshots and agreement like any other ranking. Unlike it, they are
made by the people the export names, not by the "imported" system member.

Members. Each annotator is matched to a user: an admin's ``annotators`` map ({their Label Studio
user id, email or Argilla user id: username or email}) first, else their email (Label Studio), else
a name made from their id (``label-studio-10``, ``argilla-<uuid>``); a user matches by username, or
by email when exactly one user has it. A matched user who is already a member keeps their role. Any
other case changes who belongs to the project, so it happens only when the admin asks for it with
``create_members=True``: a user who is not a member becomes a **labeler** (never more), and an
unknown annotator becomes a new account, a labeler, with no usable password (no one can sign in as
it until a platform admin sets one: ``manage.py changepassword NAME`` or the Django admin).
Without it, the import is refused and the message lists who is missing. The system accounts
(``rankforge-imported``, ``rankforge-ai``) are never matched.

Counted once. A comparison carries its import key (``metadata.import_key``: ``label_studio:<task
id>`` or ``argilla:<record id>``); importing an item whose key the project has already finds that
comparison (it must have the same prompt and completions, or the item is refused) and adds only the
rankings of annotators who have none on it yet (one ranking per comparison and labeler, as a unique
constraint already says). The same file imported twice adds nothing; a later export of the same tasks
adds only the new annotations. Imports of one project run one after the other (the project row is
locked), so two at once cannot both create the same comparison.

Errors. A bad item is refused with its place (``tasks[3] (id 17)``, ``line 5``), the field and the
value, and nothing is imported; with ``on_error="skip"`` bad items are left out and listed instead.
A file that cannot be read at all, or annotators that are not members, always refuse the whole import.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower

from common.exceptions import ServiceError, TooLarge
from contracts.orders import make_order
from labeling import archives
from labeling.external_formats import (
    ARGILLA,
    FORMATS,
    LABEL_STUDIO,
    Annotator,
    ExternalComparison,
    ExternalFormatError,
    FormatOptions,
    parse_argilla_record,
    parse_label_studio_task,
    read_items,
)
from labeling.models import Comparison, LabelSource, Membership, Project, Ranking, Role
from labeling.ranking_rules import RankingError, normalize_order
from labeling.services.comparisons import BATCH, ParsedComparison, comparisons_create, storable
from labeling.services.system_members import SYSTEM_USERNAMES
from labeling.splits import stable_split

User = get_user_model()

ON_ERROR = ("fail", "skip")
SPLIT_NAMES = {"train": "train", "validation": "eval", "valid": "eval", "eval": "eval", "dev": "eval", "test": "test"}
LISTED = 100  # skipped items listed in a response (all are counted)


def max_unpacked_bytes() -> int:
    """What an uploaded archive may unpack to: RANKFORGE_MAX_UNPACKED_BYTES, else 4x the upload limit."""
    return int(getattr(settings, "RANKFORGE_MAX_UNPACKED_BYTES", 4 * settings.RANKFORGE_MAX_UPLOAD_BYTES))


def _refusal(exc: ExternalFormatError) -> ServiceError:
    return ServiceError(str(exc), errors=[exc.as_dict()])


def _file_error(message: str) -> ServiceError:
    return ServiceError(message, errors=[{"item": None, "field": None, "message": message}])


def parse_annotators(text: str | Mapping | None) -> dict[str, str]:
    """The ``annotators`` option: a JSON object {their id or email: username or email}."""
    if text in (None, ""):
        return {}
    try:
        value = json.loads(text) if isinstance(text, str) else dict(text)
    except (json.JSONDecodeError, TypeError, ValueError):
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v.strip() and "\x00" not in k + v for k, v in value.items()
    ):
        raise ServiceError(
            'annotators: expected a JSON object of names, e.g. {"10": "bob", "ann@example.org": "ann"}.',
            errors={"annotators": ['Expected a JSON object {"their id or email": "username or email"}.']},
        )
    return {k: v.strip() for k, v in value.items()}


def _names(value) -> tuple[str, ...]:
    """A comma-separated option (or a list) as a tuple of names."""
    if isinstance(value, str):
        value = value.split(",")
    return tuple(v.strip() for v in value or () if v and v.strip())


# --- reading -----------------------------------------------------------------------------------


def _read_all(stream: IO[bytes], limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the file passes the upload limit of {limit:,} bytes")
    return data


def _check_dataset_files(folder: Path, kind: str) -> None:
    """A saved dataset's own index files name its data files: they must be plain names in its folder
    (datasets would otherwise open whatever path a crafted state.json names)."""

    def plain(name) -> bool:
        return isinstance(name, str) and name and "/" not in name and "\\" not in name and name not in (".", "..")

    try:
        if kind == archives.HF_DATASET_DICT:
            splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
            if not isinstance(splits, list) or not all(plain(s) for s in splits):
                raise archives.ArchiveError("dataset_dict.json: a split name that is not a plain folder name")
            for split in splits:
                _check_dataset_files(folder / split, archives.HF_DATASET)
            return
        state = json.loads((folder / "state.json").read_text())
        files = state.get("_data_files", [])
        if not isinstance(files, list) or not all(isinstance(f, dict) and plain(f.get("filename")) for f in files):
            raise archives.ArchiveError(f"{folder.name}/state.json: a data file that is not a plain file name")
    except (OSError, ValueError, AttributeError) as exc:
        if isinstance(exc, archives.ArchiveError):
            raise
        raise archives.ArchiveError(f"not a dataset saved with save_to_disk: {exc}") from None


def _dataset_rows(folder: Path, kind: str) -> Iterator[tuple[int, int | None, Any, str | None]]:
    from datasets import load_from_disk  # offline: reads the Arrow files only

    _check_dataset_files(folder, kind)
    try:
        dataset = load_from_disk(str(folder))
    except Exception as exc:  # datasets and pyarrow raise many kinds for a broken folder
        raise archives.ArchiveError(f"not a dataset saved with save_to_disk: {type(exc).__name__}: {exc}") from None
    parts = dataset.items() if hasattr(dataset, "keys") else [(None, dataset)]
    for name, part in parts:
        if name is not None and name not in SPLIT_NAMES:
            raise archives.ArchiveError(f"unknown split name {name!r}; expected some of {sorted(SPLIT_NAMES)}")
        for index, row in enumerate(part):
            yield index, None, row, name


def _argilla_settings_question(folder: Path) -> str:
    """The one ranking question an Argilla 2.x settings.json declares, or ""."""
    try:
        questions = json.loads((folder / "settings.json").read_text()).get("questions") or []
        names = [
            q["name"]
            for q in questions
            if isinstance(q, dict) and "ranking" in (q.get("type"), (q.get("settings") or {}).get("type"))
        ]
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return ""
    return names[0] if len(names) == 1 and isinstance(names[0], str) else ""


def _items(*, fmt: str, stream, filename: str, folder: Path | None, workdir: Path, hints: dict):
    """(index, line, item, split name) of every task or record the upload (or local folder) holds."""
    kind = "task" if fmt == LABEL_STUDIO else "record"
    if folder is None and not archives.is_archive(filename):
        return (
            (i, line, item, None)
            for i, line, item in read_items(_read_all(stream, _limit()), filename=filename, kind=kind)
        )
    if fmt != ARGILLA:
        raise archives.ArchiveError(
            "a Label Studio export is one JSON file (Export > JSON); archives and folders are read for Argilla"
        )
    if folder is None:
        unpacked = workdir / "unpacked"
        unpacked.mkdir()
        archives.safe_extract(stream, filename=filename, dest=unpacked, max_bytes=max_unpacked_bytes())
        folder = unpacked
    found, root = archives.find_dataset(folder)
    if found == archives.ARGILLA_DISK:
        hints["question"] = _argilla_settings_question(root)
        records = (root / "records.json").read_bytes()
        return ((i, line, item, None) for i, line, item in read_items(records, filename="records.json", kind=kind))
    return _dataset_rows(root, found)


def _limit() -> int:
    return settings.RANKFORGE_MAX_UPLOAD_BYTES


# --- members -----------------------------------------------------------------------------------


def _plan_members(
    *, project: Project, annotators: dict[str, Annotator], mapping: dict[str, str], create_members: bool
) -> dict[str, tuple[Any, str]]:
    """{annotator key: (the user it matches or None, the username)}, writing nothing; or a 400 listing
    the annotators who are not members (unless ``create_members``) or cannot be named."""
    wanted = {}
    for key, annotator in annotators.items():
        target = next((mapping[k] for k in (annotator.key, *annotator.aliases) if k in mapping), None)
        wanted[key] = target or annotator.email or annotator.name
    names = set(wanted.values())
    by_username = {u.username: u for u in User.objects.filter(username__in=names)}
    emails = {n.lower() for n in names if "@" in n and n not in by_username}
    by_email: dict[str, list] = {}
    for user in User.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=emails):
        by_email.setdefault(user.email_lower, []).append(user)
    system = set(SYSTEM_USERNAMES.values())
    candidates = [*by_username.values(), *(u for found in by_email.values() for u in found)]
    members = set(Membership.objects.filter(project=project, user__in=candidates).values_list("user_id", flat=True))
    validator = UnicodeUsernameValidator()
    problems, plan = [], {}
    for key, name in wanted.items():
        user = by_username.get(name)
        if user is None and "@" in name:
            matches = by_email.get(name.lower(), [])
            if len(matches) > 1:
                problems.append((key, name, f"{len(matches)} users have the email {name}; map it to one username"))
                continue
            user = matches[0] if matches else None
        if (user.username if user else name) in system:
            problems.append((key, name, "is a system account; map this annotator to a person"))
        elif user is None and not create_members:
            problems.append((key, name, "no such user"))
        elif user is None:
            try:
                validator(name)
                if len(name) > 150:
                    raise ValidationError("longer than 150 characters")
            except ValidationError as exc:
                problems.append((key, name, f"cannot be a username ({' '.join(exc.messages)}); map it"))
        elif user.pk not in members and not create_members:
            problems.append((key, user.username, "is a user but not a member of this project"))
        plan[key] = (user, user.username if user else name)
    if problems:
        shown = "; ".join(f"{key} -> {name!r}: {why}" for key, name, why in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ServiceError(
            f"{len(problems)} annotator(s) cannot be matched to members of project {project.pk}: {shown}{more}. "
            "Add them as members, map them to users with annotators "
            '({"their id or email": "username"}), or import with create_members=true to make them labelers '
            "(a new account has no password until a platform admin sets one).",
            errors=[{"annotator": key, "username": name, "message": why} for key, name, why in problems],
        )
    return plan


def _enroll(
    *, project: Project, plan: dict[str, tuple[Any, str]], annotators: dict[str, Annotator], keys: set[str]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """{annotator key: user} for ``keys``, creating the accounts and labeler memberships the plan needs."""
    planned_users = [user for key, (user, _) in plan.items() if user is not None and key in keys]
    members = set(Membership.objects.filter(project=project, user__in=planned_users).values_list("user_id", flat=True))
    report: dict[str, set[str]] = {"matched": set(), "added": set(), "created": set()}
    users: dict[str, Any] = {}
    created: dict[str, Any] = {}
    for key in sorted(keys):
        user, name = plan[key]
        if user is None:
            user = created.get(name)
            if user is None:
                user = User(username=name, email=_email_or_blank(annotators[key].email or name))
                user.set_unusable_password()  # nobody signs in as it until a platform admin sets a password
                user.save()
                Membership.objects.create(project=project, user=user, role=Role.LABELER)
                created[name] = user
                report["created"].add(name)
        elif user.pk not in members:
            Membership.objects.create(project=project, user=user, role=Role.LABELER)  # never more than labeler
            members.add(user.pk)
            report["added"].add(user.username)
        elif user.username not in report["added"]:
            report["matched"].add(user.username)
        users[key] = user
    return users, {k: sorted(v) for k, v in report.items()}


def _email_or_blank(value: str) -> str:
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value


# --- the import --------------------------------------------------------------------------------


def _same_content(comparison: Comparison, item: ExternalComparison) -> bool:
    texts = [c.text for c in sorted(comparison.completions.all(), key=lambda c: c.position)]
    return comparison.prompt == storable(item.prompt) and texts == [storable(c["text"]) for c in item.completions]


def _check_order(item: ExternalComparison, ranking) -> None:
    """The rules a submitted ranking follows (labeling.ranking_rules), by position."""
    try:
        normalize_order(ranking.ranks, ranking.failed, range(len(item.completions)))
    except RankingError as exc:  # the parser should never let one through; refuse it by name if it did
        raise item.error(str(exc), field=ranking.where) from None


def _order(ranking, completion_ids: list[int]) -> dict:
    ranks = {completion_ids[p]: rank for p, rank in sorted(ranking.ranks.items())}
    return make_order(None, ranks, [completion_ids[p] for p in ranking.failed])


@transaction.atomic
def external_import(
    *,
    project: Project,
    format: str,
    filename: str,
    stream: IO[bytes] | None = None,
    folder: Path | None = None,
    on_error: str = "fail",
    eval_fraction: float = 0.1,
    create_members: bool = False,
    annotators: str | Mapping | None = None,
    prompt_field: str = "",
    completion_fields=(),
    items_field: str = "",
    bucket_order=(),
    failed_buckets=(),
    question: str = "",
) -> dict:
    """Import a Label Studio JSON export or Argilla ranking records (JSON / JSONL, or a .zip / .tar.gz
    of a saved dataset folder; ``folder``: such a folder on this machine) into ``project``."""
    fmt = format
    if fmt not in FORMATS:
        raise ServiceError(f"format must be one of {FORMATS}, not {fmt!r}", errors={"format": [fmt]})
    if on_error not in ON_ERROR:
        raise ServiceError(f"on_error must be one of {ON_ERROR}, not {on_error!r}", errors={"on_error": [on_error]})
    if not 0 <= eval_fraction <= 1:
        raise ServiceError(
            f"eval_fraction must be in 0..1, not {eval_fraction}", errors={"eval_fraction": [eval_fraction]}
        )
    mapping = parse_annotators(annotators)
    bucket_order, failed_buckets = _names(bucket_order), _names(failed_buckets)
    if overlap := set(bucket_order) & set(failed_buckets):
        name = sorted(overlap)[0]
        raise ServiceError(
            f"failed_buckets: {name!r} is also in bucket_order; a bucket either ranks or marks F.",
            errors={"failed_buckets": [f"{name!r} is also in bucket_order."]},
        )
    # Imports of one project run one after the other: the idempotency check below sees every earlier one.
    Project.objects.select_for_update(no_key=True).filter(pk=project.pk).first()

    hints: dict = {}
    parsed: list[ExternalComparison] = []
    skipped: list[dict] = []
    left_out: Counter = Counter()
    unlabeled = total = 0
    keys: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="rankforge-import-") as workdir:
        try:
            items = _items(fmt=fmt, stream=stream, filename=filename, folder=folder, workdir=Path(workdir), hints=hints)
            options = FormatOptions(
                k=project.completions_per_prompt,
                prompt_field=(prompt_field or "").strip(),
                completion_fields=_names(completion_fields),
                items_field=(items_field or "").strip(),
                bucket_order=bucket_order,
                failed_buckets=failed_buckets,
                # An Argilla to_disk folder's settings.json may name the ranking question.
                question=(question or "").strip() or hints.get("question", ""),
            )
            for index, line, raw, split in items:
                total += 1
                try:
                    if fmt == LABEL_STUDIO:
                        item = parse_label_studio_task(raw, index=index, line=line, options=options)
                    else:
                        item = parse_argilla_record(raw, index=index, line=line, options=options, split=split)
                        item.split = SPLIT_NAMES[split] if split else None
                    if item.key in keys and item.rankings:
                        raise item.error(f"the same id as {keys[item.key]}: an id names one item", field="id")
                except ExternalFormatError as exc:
                    if on_error == "skip":
                        skipped.append(exc.as_dict())
                        continue
                    raise
                left_out.update(item.skipped)
                if not item.rankings:
                    unlabeled += 1
                    continue
                keys[item.key] = item.where
                parsed.append(item)
        except ExternalFormatError as exc:
            raise _refusal(exc) from None
        except archives.ArchiveError as exc:
            raise _file_error(str(exc)) from None
    if not parsed:
        what = "ranked tasks" if fmt == LABEL_STUDIO else "records with a submitted ranking"
        raise ServiceError(
            f"The file holds no {what} to import ({total} read, {unlabeled} without a ranking, "
            f"{len(skipped)} refused).",
            errors=skipped[:LISTED] or None,
        )

    annotators_seen = {r.annotator.key: r.annotator for item in parsed for r in item.rankings}
    plan = _plan_members(project=project, annotators=annotators_seen, mapping=mapping, create_members=create_members)

    # Everything that can refuse an item is checked before anything is written.
    existing: dict[str, Comparison] = {}
    all_keys = [item.key for item in parsed]
    for start in range(0, len(all_keys), 1000):
        for comparison in (
            Comparison.objects.filter(project=project, metadata__import_key__in=all_keys[start : start + 1000])
            .prefetch_related("completions")
            .order_by("id")
        ):
            existing.setdefault(comparison.metadata["import_key"], comparison)
    kept: list[ExternalComparison] = []
    for item in parsed:
        try:
            found = existing.get(item.key)
            if found is not None and not _same_content(found, item):
                raise item.error(
                    f"was imported before (comparison {found.pk}) with a different prompt or completions; "
                    "an id names one item: delete that comparison or give this item another id",
                    field="id",
                )
            by_person: dict[str, str] = {}
            for ranking in item.rankings:
                _check_order(item, ranking)
                _, name = plan[ranking.annotator.key]
                if name in by_person:
                    raise item.error(
                        f"{by_person[name]} and {ranking.annotator.key} are both {name}: "
                        "one person ranks a comparison once",
                        field=ranking.where,
                    )
                by_person[name] = ranking.annotator.key
        except ExternalFormatError as exc:
            if on_error == "skip":
                skipped.append(exc.as_dict())
                continue
            raise _refusal(exc) from None
        kept.append(item)
    if not kept:
        raise ServiceError(
            f"The file holds nothing to import: all {len(skipped)} items with a ranking were refused.",
            errors=skipped[:LISTED],
        )
    # Accounts and memberships only for the annotators of what is imported.
    users, members = _enroll(
        project=project,
        plan=plan,
        annotators=annotators_seen,
        keys={r.annotator.key for item in kept for r in item.rankings},
    )

    new_items = [item for item in kept if item.key not in existing]
    created: dict[str, Comparison] = {}
    for start in range(0, len(new_items), BATCH):
        batch = new_items[start : start + BATCH]
        rows = [
            ParsedComparison(
                line=item.line or item.index,
                prompt=item.prompt,
                completions=item.completions,
                split=item.split or stable_split(item.key, eval_fraction=eval_fraction),
                metadata={
                    "source": fmt,
                    "import_key": item.key,
                    "external_id": item.external_id,
                    "imported_from": item.where,
                },
            )
            for item in batch
        ]
        for item, comparison in zip(batch, comparisons_create(project=project, parsed=rows), strict=True):
            created[item.key] = comparison

    stored = {}
    old_ids = [c.pk for c in existing.values()]
    for start in range(0, len(old_ids), 1000):
        for comparison_id, labeler_id, orders in Ranking.objects.filter(
            comparison_id__in=old_ids[start : start + 1000]
        ).values_list("comparison_id", "labeler_id", "orders"):
            stored[(comparison_id, labeler_id)] = orders
    rankings: list[Ranking] = []
    counts = Counter()
    for item in kept:
        comparison = created.get(item.key) or existing[item.key]
        if item.key in created:
            completion_ids = comparison.completion_ids
        else:
            completion_ids = [c.pk for c in sorted(comparison.completions.all(), key=lambda c: c.position)]
        for ranking in item.rankings:
            user = users[ranking.annotator.key]
            order = _order(ranking, completion_ids)
            if (comparison.pk, user.pk) in stored:
                counts["rankings_existing"] += 1
                counts["rankings_existing_differ"] += stored[(comparison.pk, user.pk)] != [order]
                continue
            rankings.append(
                Ranking(
                    comparison=comparison,
                    labeler=user,
                    source=LabelSource.IMPORTED,
                    orders=[order],
                    time_spent_ms=ranking.time_spent_ms,
                )
            )
    for start in range(0, len(rankings), BATCH):
        Ranking.objects.bulk_create(rankings[start : start + BATCH])
    return {
        "format": fmt,
        "items": total,
        "comparisons_created": len(created),
        "comparisons_existing": len(kept) - len(created),
        "rankings_created": len(rankings),
        "rankings_existing": counts["rankings_existing"],
        "rankings_existing_differ": counts["rankings_existing_differ"],
        "unlabeled": unlabeled,
        "left_out": dict(sorted(left_out.items())),
        "skipped": len(skipped),
        "skipped_items": skipped[:LISTED],
        "members": members,
    }
