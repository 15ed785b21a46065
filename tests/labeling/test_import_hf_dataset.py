import pytest
from datasets import Dataset, DatasetDict
from django.core.management import CommandError, call_command

from labeling.models import Dataset as RFDataset
from labeling.models import PromptRow

pytestmark = pytest.mark.django_db


def test_dataset_dict_splits_become_row_splits(project, tmp_path, capsys):
    rows = {"dialogue": ["#Person1#: hi", "#Person1#: bye", "#Person1#: ok"], "summary": ["greet", "leave", "agree"]}
    DatasetDict({"train": Dataset.from_dict(rows), "validation": Dataset.from_dict(rows)}).save_to_disk(tmp_path / "ds")
    call_command("import_hf_dataset", project.id, str(tmp_path / "ds"), "--name", "dialogsum-mini")
    dataset = RFDataset.objects.get(name="dialogsum-mini")
    assert dataset.fields == ["dialogue", "summary"]
    assert dataset.split_counts == {"train": 3, "eval": 3, "test": 0}
    assert PromptRow.objects.filter(dataset=dataset, split="eval").count() == 3
    assert "Imported 6 rows" in capsys.readouterr().out


def test_bad_rows_import_nothing(project, tmp_path):
    Dataset.from_dict({"a": [{"nested": 1}]}).save_to_disk(tmp_path / "bad")
    with pytest.raises(CommandError, match="line 1, field 'a'"):
        call_command("import_hf_dataset", project.id, str(tmp_path / "bad"))
    assert not RFDataset.objects.exists()


def test_not_a_dataset(project, tmp_path):
    with pytest.raises(CommandError, match="not a dataset saved with save_to_disk"):
        call_command("import_hf_dataset", project.id, str(tmp_path))
