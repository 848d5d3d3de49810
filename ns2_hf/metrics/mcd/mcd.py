"""`evaluate` module: mel-cepstral distortion, f0 RMSE (cents) and V/UV error against a reference.

Wraps `ns2_hf.metrics.spectral_distortion` (DTW frame alignment by default; see its docstring).
"""

import evaluate
import numpy as np

from ns2_hf.metrics import spectral_distortion
from ns2_hf.metrics.module_info import audio_metric_info
from ns2_hf.metrics.module_info import mean_of_rows

_DESCRIPTION = "Mel-cepstral distortion (dB), f0 RMSE (cents) and voiced/unvoiced error on DTW-aligned frames."

_KWARGS_DESCRIPTION = """
Args:
    predictions: waveforms (lists of floats, `(samples,)`).
    references: reference waveforms of the same text (ground truth).
    sampling_rate: rate of all waveforms in Hz (required).
    align: "dtw" (default) or "none" (frame i with frame i, for sample-aligned pairs).
Returns:
    mcd, f0_rmse_cents, vuv_error: means over pairs (f0_rmse_cents ignores pairs with no frame voiced in both).
"""

_CITATION = """@inproceedings{kubichek1993mcd, title={Mel-cepstral distance measure for objective speech quality assessment},
author={Kubichek, Robert}, booktitle={IEEE PACRIM}, year={1993}}"""


class MCD(evaluate.Metric):
    def _info(self):
        return audio_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references, sampling_rate, align="dtw"):
        rows = [
            spectral_distortion(np.asarray(prediction, np.float32), np.asarray(reference, np.float32), sampling_rate, align=align)
            for prediction, reference in zip(predictions, references)
        ]
        return mean_of_rows(rows)
