"""`evaluate` module: word and character error rate after Whisper's English text normalisation.

Wraps `ns2_hf.metrics.word_error_rate` / `character_error_rate` (corpus-level rates, `jiwer`).
Transcribe audio first with `ns2_hf.metrics.transcribe`.
"""

import datasets
import evaluate

from ns2_hf.metrics import character_error_rate
from ns2_hf.metrics import word_error_rate

_DESCRIPTION = "WER and CER of hypotheses (ASR transcripts) against reference texts, after Whisper's English normaliser."

_KWARGS_DESCRIPTION = """
Args:
    predictions: hypothesis texts (ASR transcripts of the synthesized speech).
    references: the texts that were to be spoken.
    normalize: apply Whisper's English normalisation to both (default True).
Returns:
    wer: corpus-level word error rate. cer: corpus-level character error rate.
Example:
    >>> wer = evaluate.load(ns2_hf.metrics.metric_path("wer"))
    >>> wer.compute(predictions=["hello world"], references=["Hello, world!"])
    {'wer': 0.0, 'cer': 0.0}
"""

_CITATION = """@inproceedings{radford2023whisper, title={Robust Speech Recognition via Large-Scale Weak Supervision},
author={Radford, Alec and Kim, Jong Wook and Xu, Tao and Brockman, Greg and McLeavey, Christine and Sutskever, Ilya},
booktitle={ICML}, year={2023}}"""


class WER(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, normalize=True):
        return {
            "wer": word_error_rate(predictions, references, normalize=normalize),
            "cer": character_error_rate(predictions, references, normalize=normalize),
        }
