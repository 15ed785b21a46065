"""ROUGE as an ``evaluate`` module kept in the project, loaded by path (offline):

    evaluate.load("/abs/path/training/ml/metrics/rouge")

The structure follows the Hugging Face hub's ``rouge`` metric script (an ``evaluate.Metric`` with
``_info`` and ``_compute`` on Google's ``rouge_score``), with two differences: ``use_stemmer``
defaults to true (the usual setting for summarization), and the aggregate is the plain mean of the
per-example F-measures (the hub script takes the middle of a bootstrap resample, which moves a little
between calls). ``rougeLsum`` splits summaries into sentences on newlines, as ``rouge_score`` does.
"""

import datasets
import evaluate
from rouge_score import rouge_scorer

_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    publisher = "Association for Computational Linguistics",
    url = "https://www.aclweb.org/anthology/W04-1013",
    pages = "74--81",
}
"""

_DESCRIPTION = """\
ROUGE (Recall-Oriented Understudy for Gisting Evaluation) compares a generated summary with one or
more references by overlapping n-grams (rouge1, rouge2), the longest common subsequence (rougeL) and
the summary-level LCS over newline-separated sentences (rougeLsum). Computed with Google's
rouge_score package; the result is the F-measure of each type.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated texts.
    references: list of references, one string per prediction or a list of strings (several
        references: the best-scoring one counts).
    rouge_types: which ROUGE types (default rouge1, rouge2, rougeL, rougeLsum).
    use_aggregator: true (default): the mean F-measure of each type; false: the per-example list.
    use_stemmer: Porter-stem words before matching (default true).
    tokenizer: optional callable text -> tokens (default: rouge_score's, lowercased, alphanumeric).
Returns:
    {"rouge1": float, "rouge2": float, "rougeL": float, "rougeLsum": float} (or lists per example)
Examples:
    >>> rouge = evaluate.load("training/ml/metrics/rouge")
    >>> rouge.compute(predictions=["hello there"], references=["hello there"])
    {'rouge1': 1.0, 'rouge2': 1.0, 'rougeL': 1.0, 'rougeLsum': 1.0}
"""

DEFAULT_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


class _Tokenizer:
    """rouge_score's tokenizer interface around a plain callable."""

    def __init__(self, function):
        self.function = function

    def tokenize(self, text):
        return self.function(text)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Sequence(datasets.Value("string", id="sequence")),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Value("string", id="sequence"),
                    }
                ),
            ],
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=["https://en.wikipedia.org/wiki/ROUGE_(metric)"],
        )

    def _compute(
        self, predictions, references, rouge_types=None, use_aggregator=True, use_stemmer=True, tokenizer=None
    ):
        rouge_types = list(rouge_types or DEFAULT_TYPES)
        scorer = rouge_scorer.RougeScorer(
            rouge_types=rouge_types,
            use_stemmer=use_stemmer,
            tokenizer=_Tokenizer(tokenizer) if tokenizer is not None else None,
        )
        per_type = {name: [] for name in rouge_types}
        for reference, prediction in zip(references, predictions, strict=True):
            if isinstance(reference, list | tuple):
                score = scorer.score_multi(reference, prediction)
            else:
                score = scorer.score(reference, prediction)
            for name in rouge_types:
                per_type[name].append(score[name].fmeasure)
        if not use_aggregator:
            return per_type
        return {name: (sum(values) / len(values) if values else 0.0) for name, values in per_type.items()}
