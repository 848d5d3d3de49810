"""`evaluate` module: the codec's frame-rate buzz — the share of voiced frames whose f0 sits at the
codec's latent frame rate (80 Hz for 16 kHz / hop 200), where a decoder that imprints its frame grid
makes a pitch tracker lock on.

Wraps `ns2_hf.metrics.frame_rate_buzz`; see `ns2_hf/metrics/frame_buzz.py` for why only the
fundamental is counted.
"""

import evaluate
import numpy as np

from ns2_hf.metrics import frame_rate_buzz
from ns2_hf.metrics.module_info import audio_metric_info
from ns2_hf.metrics.module_info import mean_of_rows

_DESCRIPTION = ("Share of voiced frames whose f0 lies within ±2.5 % of the codec frame rate, and how strongly the "
                "signal's energy locks to the codec's frame grid (1 = not at all).")

_KWARGS_DESCRIPTION = """
Args:
    predictions: waveforms (lists of floats, `(samples,)`).
    sampling_rate: their rate in Hz (required).
    frame_rate: the codec's latent frame rate in Hz (required; 80.0 for the NS2 codec).
Returns:
    buzz_share: mean over waveforms of the share of voiced frames at the frame rate.
    grid_lock: mean frame-grid locking ratio (≈ 1 = no imprint of the frame grid).
"""

_CITATION = ""


class Buzz(evaluate.Metric):
    def _info(self):
        return audio_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION, with_references=False)

    def _compute(self, predictions, sampling_rate, frame_rate):
        rows = [frame_rate_buzz(np.asarray(prediction, np.float32), sampling_rate, frame_rate) for prediction in predictions]
        return {name: value for name, value in mean_of_rows(rows).items() if name != "voiced_frames"}
