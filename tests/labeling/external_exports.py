"""Small exports in the exact shapes Label Studio and Argilla write (see labeling/external_formats.py
for where each shape comes from), and helpers that save the Argilla ones as Hugging Face datasets
the way Argilla does."""

import copy
import io
import json
import tarfile
import zipfile
from pathlib import Path

PROMPTS = ["What caused the library of Alexandria to burn?", "Name a prime above 10.", "Say hello in French."]
ANSWERS = [
    ["Wars led to the library's ruin.", "Julius Caesar's fire in 48 BC, and later decline.", "Aliens."],
    ["11", "12", "13"],
    ["Bonjour", "Hola", "Salut"],
]


def _ls_annotation(annotation_id, task_id, completed_by, result, *, email=None, cancelled=False, lead_time=14.2):
    """A Label Studio annotation as the JSON export writes it (Label Studio 1.x)."""
    return {
        "id": annotation_id,
        "completed_by": completed_by,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": "2024-05-02T10:11:12.345678Z",
        "updated_at": "2024-05-02T10:11:12.345678Z",
        "draft_created_at": None,
        "lead_time": lead_time,
        "prediction": {},
        "result_count": 0,
        "unique_id": f"0c5e{annotation_id:04d}-7d0b-4f0e-9a0e-2c2f8d7f0b1a",
        "import_id": None,
        "last_action": None,
        "task": task_id,
        "project": 7,
        "updated_by": completed_by if isinstance(completed_by, int) else completed_by["id"],
        "parent_prediction": None,
        "parent_annotation": None,
        "last_created_by": None,
        **({"created_username": f" {email}, {completed_by}"} if email else {}),
    }


def _ls_task(task_id, data, annotations):
    return {
        "id": task_id,
        "annotations": annotations,
        "file_upload": "b1f2c3d4-dataset.json",
        "drafts": [],
        "predictions": [],
        "data": data,
        "meta": {},
        "created_at": "2024-05-01T09:00:00.000000Z",
        "updated_at": "2024-05-02T10:11:12.345678Z",
        "inner_id": task_id - 100,
        "total_annotations": len(annotations),
        "cancelled_annotations": sum(a["was_cancelled"] for a in annotations),
        "total_predictions": 0,
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": None,
        "project": 7,
        "updated_by": 1,
        "comment_authors": [],
    }


def _ranker(ranker: dict, to_name="answers"):
    return [
        {
            "id": "Ab3dE9fG1h",
            "type": "ranker",
            "value": {"ranker": ranker},
            "origin": "manual",
            "to_name": to_name,
            "from_name": "rank",
        }
    ]


def _items(i):
    return [{"id": f"llm_{j + 1}", "title": f"LLM {j + 1}", "body": ANSWERS[i][j]} for j in range(3)]


# Users as Label Studio's export names them: 1 is an object with an email (newer exports), 2 and 3 ids
# with created_username beside them, 4 an id alone.
ANN = {"id": 1, "first_name": "Ann", "last_name": "Lee", "avatar": None, "email": "ann@example.org", "initials": "al"}


def label_studio_ranker_export():
    """The "LLM Ranker" config without buckets: each annotation is a strict order, best first."""
    tasks = []
    for i in range(3):
        task_id = 101 + i
        annotations = [
            _ls_annotation(10 * i + 1, task_id, ANN, _ranker({"answers": ["llm_2", "llm_1", "llm_3"]})),
            _ls_annotation(
                10 * i + 2, task_id, 2, _ranker({"answers": ["llm_1", "llm_2", "llm_3"]}), email="bo@example.org"
            ),
        ]
        tasks.append(_ls_task(task_id, {"prompt": PROMPTS[i], "items": _items(i)}, annotations))
    return tasks


def label_studio_bucket_export():
    """The "LLM Ranker" config with buckets: relevant_results (best), the unsorted list "_" (middle),
    biased_results (F, by the import's options). Ties within a bucket."""
    result = _ranker({"_": ["llm_1"], "biased_results": ["llm_3"], "relevant_results": ["llm_2"]}, to_name="prompt")
    tie = _ranker({"_": [], "biased_results": [], "relevant_results": ["llm_1", "llm_2", "llm_3"]}, to_name="prompt")
    return [
        _ls_task(
            201,
            {"prompt": PROMPTS[0], "items": _items(0)},
            [
                _ls_annotation(31, 201, 3, result, email="cy@example.org"),
                _ls_annotation(32, 201, 4, tie),  # an id alone: label-studio-4
            ],
        )
    ]


def _pairwise(selected):
    return [
        {
            "id": "pW1x2y3z4A",
            "type": "pairwise",
            "value": {"selected": selected},
            "origin": "manual",
            "to_name": "comparison",
            "from_name": "comparison",
        }
    ]


def label_studio_pairwise_export():
    """The "Human preference collection for RLHF" config: <Pairwise toName="answer1,answer2"/>."""
    data = [
        {"prompt": "Is the sea salty?", "answer1": "Yes, about 3.5% salt.", "answer2": "No."},
        {"prompt": "2 + 2?", "answer1": "5", "answer2": "4"},
        {"prompt": "Capital of Peru?", "answer1": "Lima", "answer2": "Cusco"},
    ]
    return [
        _ls_task(
            301,
            data[0],
            [
                _ls_annotation(41, 301, ANN, _pairwise("left")),
                _ls_annotation(42, 301, 2, _pairwise("left"), email="bo@example.org"),
                _ls_annotation(43, 301, 4, [], cancelled=True),  # skipped in Label Studio
            ],
        ),
        _ls_task(302, data[1], [_ls_annotation(44, 302, ANN, _pairwise("right"))]),
        _ls_task(303, data[2], []),  # not annotated yet
    ]


# --- Argilla -----------------------------------------------------------------------------------

USER_A = "3f1b6a0e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"
USER_B = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
ARGILLA_TEXTS = [
    {"prompt": PROMPTS[i], "response1": ANSWERS[i][0], "response2": ANSWERS[i][1], "response3": ANSWERS[i][2]}
    for i in range(3)
]
# (user, {option: rank}) per record: record 0 has a tie (user B puts response1 and response3 level).
ARGILLA_RANKS = [
    [
        (USER_A, {"response2": 1, "response1": 2, "response3": 3}),
        (USER_B, {"response2": 1, "response1": 2, "response3": 2}),
    ],
    [(USER_A, {"response1": 1, "response2": 2, "response3": 3})],
    [(USER_B, {"response3": 1, "response1": 2, "response2": 3})],
]


def argilla_v1_records():
    """Argilla 1.x FeedbackRecord dicts (``record.dict()``), a discarded response on record 1."""
    records = []
    for i, fields in enumerate(ARGILLA_TEXTS):
        responses = [
            {
                "user_id": user,
                "values": {
                    "preference": {"value": [{"value": o, "rank": r} for o, r in ranks.items()]},
                    "comment": {"value": "fine"},
                },
                "status": "submitted",
                "inserted_at": "2024-04-03T12:00:00",
                "updated_at": "2024-04-03T12:00:00",
            }
            for user, ranks in ARGILLA_RANKS[i]
        ]
        if i == 1:
            responses.append(
                {
                    "user_id": USER_B,
                    "values": {"preference": {"value": [{"value": "response3", "rank": 1}]}},
                    "status": "discarded",
                }
            )
        records.append(
            {
                "fields": dict(fields),
                "metadata": {"source": "oasst"},
                "vectors": {},
                "responses": responses,
                "suggestions": [],
                "external_id": f"rec-{i}",
            }
        )
    return records


def argilla_v2_records():
    """Argilla 2.x records as ``dataset.records.to_json`` / ``to_disk``'s records.json write them."""
    out = []
    for i, fields in enumerate(ARGILLA_TEXTS):
        responses = {
            "preference": [
                {"value": [o for o, _ in sorted(ranks.items(), key=lambda x: x[1])], "user_id": user}
                for user, ranks in ARGILLA_RANKS[i]
                if len(set(ranks.values())) == len(ranks)  # 2.x answers are strict orders: no ties
            ]
        }
        out.append(
            {
                "id": f"rec-{i}",
                "fields": dict(fields),
                "metadata": {},
                "suggestions": {},
                "responses": responses,
                "vectors": {},
                "status": "completed",
                "_server_id": f"0000000{i}-aaaa-4bbb-8ccc-dddddddddddd",
            }
        )
    return out


def argilla_v2_flat_records():
    """What ``dataset.records.to_datasets()`` holds (``to_list(flatten=True)``)."""
    out = []
    for record in argilla_v2_records():
        answers = record["responses"]["preference"]
        out.append(
            {
                "id": record["id"],
                "status": record["status"],
                "_server_id": record["_server_id"],
                **record["fields"],
                "preference.responses": [a["value"] for a in answers],
                "preference.responses.users": [a["user_id"] for a in answers],
                "preference.responses.status": ["submitted"] * len(answers),
            }
        )
    return out


def _columns(ranking: list[dict]) -> dict:
    # A Sequence of a struct is stored (and read back) as a struct of lists.
    return {"rank": [v["rank"] for v in ranking], "value": [v["value"] for v in ranking]}


def save_argilla_v1_dataset(folder: Path) -> None:
    """``FeedbackDataset.format_as("datasets").save_to_disk(folder)`` with 1.x's exact features."""
    from datasets import Dataset, Features, Sequence, Value

    ranking = Sequence({"rank": Value(dtype="uint8"), "value": Value(dtype="string")}, id="question")
    features = Features(
        {
            **{name: Value(dtype="string", id="field") for name in ARGILLA_TEXTS[0]},
            "preference": [
                {
                    "user_id": Value(dtype="string", id="question"),
                    "value": ranking,
                    "status": Value(dtype="string", id="question"),
                }
            ],
            "preference-suggestion": Sequence({"rank": Value(dtype="uint8"), "value": Value(dtype="string")}),
            "preference-suggestion-metadata": {
                "type": Value(dtype="string"),
                "score": Value(dtype="float32"),
                "agent": Value(dtype="string"),
            },
            "external_id": Value(dtype="string", id="external_id"),
            "metadata": Value(dtype="string", id="metadata"),
        }
    )
    columns = {name: [] for name in features}
    for record in argilla_v1_records():
        for name in ARGILLA_TEXTS[0]:
            columns[name].append(record["fields"][name])
        columns["preference"].append(
            [
                {"user_id": r["user_id"], "value": _columns(r["values"]["preference"]["value"]), "status": r["status"]}
                for r in record["responses"]
            ]
        )
        columns["preference-suggestion"].append(None)
        columns["preference-suggestion-metadata"].append({"type": None, "score": None, "agent": None})
        columns["external_id"].append(record["external_id"])
        columns["metadata"].append(json.dumps(record["metadata"]))
    Dataset.from_dict(columns, features=features).save_to_disk(str(folder))


def save_argilla_v2_dataset(folder: Path) -> None:
    """``dataset.records.to_datasets().save_to_disk(folder)``."""
    from datasets import Dataset

    Dataset.from_list(argilla_v2_flat_records()).save_to_disk(str(folder))


def save_argilla_v2_disk(folder: Path) -> None:
    """``rg.Dataset.to_disk(folder)``: dataset.json, settings.json, records.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps({"name": "prefs", "id": "d-1", "status": "ready"}))
    settings = {
        "guidelines": "Rank the responses.",
        "fields": [{"name": n, "type": "text", "required": True} for n in ARGILLA_TEXTS[0]],
        "questions": [
            {
                "name": "preference",
                "title": "Order the responses",
                "required": True,
                "settings": {"type": "ranking", "options": [{"value": f"response{j}"} for j in (1, 2, 3)]},
            },
            {"name": "comment", "settings": {"type": "text"}},
        ],
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "records.json").write_text(json.dumps(argilla_v2_records()))


def packed(folder: Path, kind: str = "zip", *, inside: str = "export") -> bytes:
    """``folder`` as a .zip or .tar.gz (under a top folder ``inside``, as zipping a folder does)."""
    buffer = io.BytesIO()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, f"{inside}/{path.relative_to(folder)}")
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in files:
                archive.add(path, f"{inside}/{path.relative_to(folder)}")
    return buffer.getvalue()


def dumps(tasks) -> bytes:
    return json.dumps(tasks, indent=2).encode()


def jsonl(items) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def deep(value):
    return copy.deepcopy(value)
