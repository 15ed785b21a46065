"""BLEU as an ``evaluate`` module kept in the project, loaded by path (offline):

    evaluate.load("/abs/path/training/ml/metrics/bleu")

Structured like the Hugging Face hub's ``bleu`` metric script (same result keys: ``bleu`` in [0, 1],
``precisions``, ``brevity_penalty``, ``length_ratio``, ``translation_length``,
``reference_length``), but computed by ``sacrebleu`` (corpus BLEU, 13a tokenization by default),
the reference implementation. Several references per prediction are allowed; predictions with fewer
references than the others are padded with empty ones (sacrebleu ignores them).
"""

import datasets
import evaluate
import sacrebleu

_CITATION = """\
@inproceedings{papineni-etal-2002-bleu,
    title = "{B}leu: a Method for Automatic Evaluation of Machine Translation",
    author = "Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing",
    booktitle = "Proceedings of the 40th Annual Meeting of the Association for Computational Linguistics",
    year = "2002",
    pages = "311--318",
}
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
"""

_DESCRIPTION = """\
BLEU (Bilingual Evaluation Understudy): the geometric mean of modified 1- to 4-gram precisions of
the predictions against the references, over the whole corpus, times a brevity penalty. Computed
with sacrebleu; reported in [0, 1] (sacrebleu's score / 100).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated texts.
    references: list of references, one string per prediction or a list of strings.
    tokenize: sacrebleu tokenizer (default "13a"; "intl", "char", "none", ...).
    lowercase: compare lowercased text (default false).
    smooth_method: "exp" (default), "floor", "add-k" or "none".
    smooth_value: the value for "floor" / "add-k".
Returns:
    {"bleu", "precisions" (4 floats in [0, 1]), "brevity_penalty", "length_ratio",
     "translation_length", "reference_length"}
Examples:
    >>> bleu = evaluate.load("training/ml/metrics/bleu")
    >>> bleu.compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"])["bleu"]
    1.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
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
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://en.wikipedia.org/wiki/BLEU"],
        )

    def _compute(
        self, predictions, references, tokenize="13a", lowercase=False, smooth_method="exp", smooth_value=None
    ):
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        references = [list(r) if isinstance(r, list | tuple) else [r] for r in references]
        width = max((len(r) for r in references), default=1)
        # sacrebleu takes one stream per reference position; a missing reference is None (skipped).
        streams = [[r[i] if i < len(r) else None for r in references] for i in range(width)]
        score = sacrebleu.corpus_bleu(
            list(predictions),
            streams,
            tokenize=tokenize,
            lowercase=lowercase,
            smooth_method=smooth_method,
            smooth_value=smooth_value,
        )
        return {
            "bleu": score.score / 100,
            "precisions": [p / 100 for p in score.precisions],
            "brevity_penalty": score.bp,
            "length_ratio": score.ratio,
            "translation_length": score.sys_len,
            "reference_length": score.ref_len,
        }
