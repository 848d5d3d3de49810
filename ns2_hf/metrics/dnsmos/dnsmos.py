"""`evaluate` module: DNSMOS (P.835 SIG / BAK / OVRL and P.808), a reference-free MOS predictor.

Wraps `ns2_hf.metrics.dnsmos` (`speechmos`' ONNX models).
"""

import evaluate
import numpy as np

from ns2_hf.metrics import dnsmos
from ns2_hf.metrics.module_info import audio_metric_info
from ns2_hf.metrics.module_info import mean_of_rows

_DESCRIPTION = "DNSMOS speech quality scores (1-5) of waveforms; no reference needed."

_KWARGS_DESCRIPTION = """
Args:
    predictions: waveforms (lists of floats, `(samples,)`).
    sampling_rate: their rate in Hz (required; resampled to 16 kHz).
Returns:
    dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808: means over waveforms.
"""

_CITATION = """@inproceedings{reddy2022dnsmos, title={DNSMOS P.835: A Non-Intrusive Perceptual Objective Speech Quality Metric to
Evaluate Noise Suppressors}, author={Reddy, Chandan K. A. and Gopal, Vishak and Cutler, Ross}, booktitle={ICASSP}, year={2022}}"""


class DNSMOS(evaluate.Metric):
    def _info(self):
        return audio_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, with_references=False)

    def _compute(self, predictions, sampling_rate):
        rows = [dnsmos(np.asarray(prediction, np.float32), sampling_rate) for prediction in predictions]
        return mean_of_rows(rows)
