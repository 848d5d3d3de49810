"""`evaluate` module: speaker similarity (SIM), the cosine of speaker embeddings of each prediction
and its reference (the prompt, or the ground-truth recording).

Wraps `ns2_hf.metrics.speaker_similarity` (Resemblyzer by default, or an
`AutoModelForAudioXVector` checkpoint via `speaker_encoder`).
"""

import evaluate
import numpy as np

from ns2_hf.metrics import speaker_similarity
from ns2_hf.metrics.module_info import audio_metric_info

_DESCRIPTION = "Cosine similarity of speaker embeddings between each prediction and its reference waveform."

_KWARGS_DESCRIPTION = """
Args:
    predictions: waveforms (lists of floats, `(samples,)`), e.g. synthesized speech.
    references: waveforms of the reference speaker (prompt or ground truth).
    sampling_rate: rate of all waveforms in Hz (required).
    speaker_encoder: None (Resemblyzer) or a transformers x-vector checkpoint folder / Hub name.
Returns:
    speaker_similarity: mean cosine similarity. scores: one cosine per pair.
"""

_CITATION = """@inproceedings{wan2018generalized, title={Generalized End-to-End Loss for Speaker Verification},
author={Wan, Li and Wang, Quan and Papir, Alan and Moreno, Ignacio Lopez}, booktitle={ICASSP}, year={2018}}"""


class SpeakerSimilarity(evaluate.Metric):
    def _info(self):
        return audio_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references, sampling_rate, speaker_encoder=None):
        scores = [
            speaker_similarity(np.asarray(prediction, np.float32), np.asarray(reference, np.float32), sampling_rate, speaker_encoder)
            for prediction, reference in zip(predictions, references)
        ]
        return {"speaker_similarity": float(np.mean(scores)), "scores": scores}
