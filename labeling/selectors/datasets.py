from django.db.models import QuerySet

from labeling.models import Dataset, Project, PromptRow, PromptTemplate


def datasets_for_project(*, project: Project) -> QuerySet[Dataset]:
    return Dataset.objects.filter(project=project)


def dataset_in_project(*, project: Project, dataset_id: int) -> Dataset | None:
    return Dataset.objects.filter(project=project, pk=dataset_id).first()


def dataset_rows(*, dataset: Dataset, split: str | None = None) -> QuerySet[PromptRow]:
    rows = PromptRow.objects.filter(dataset=dataset)
    if split:
        rows = rows.filter(split=split)
    return rows


def prompt_row_in_project(*, project: Project, row_id: int) -> PromptRow | None:
    return PromptRow.objects.filter(dataset__project=project, pk=row_id).first()


def prompt_row_at(*, dataset: Dataset, index: int) -> PromptRow | None:
    return PromptRow.objects.filter(dataset=dataset, index=index).first()


def templates_for_project(*, project: Project, dataset_id: int | None = None) -> QuerySet[PromptTemplate]:
    templates = PromptTemplate.objects.filter(project=project)
    if dataset_id is not None:
        templates = templates.filter(dataset_id=dataset_id)
    return templates
