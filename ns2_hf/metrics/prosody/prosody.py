"""`evaluate` module: NS2 prosody evaluation on pitch.

For each pair, the absolute differences of f0 mean / std / skewness / excess kurtosis (Hz, voiced
frames) between the prediction and its reference; with `reference="ground_truth"` also the
Pearson correlation and RMSE of the f0 contours (stretched to equal length). Wraps
`ns2_hf.metrics.pitch_statistics`, `statistics_difference` and `pitch_agreement`. Phone-duration
statistics need durations, not audio: use `ns2_hf.metrics.duration_statistics`.
"""

import evaluate
import numpy as np

from ns2_hf.metrics import pitch_agreement
from ns2_hf.metrics import pitch_statistics
from ns2_hf.metrics import statistics_difference
from ns2_hf.metrics.module_info import audio_metric_info
from ns2_hf.metrics.module_info import mean_of_rows

_DESCRIPTION = "Differences of pitch statistics (NS2 paper) and, against ground truth, f0 correlation and RMSE."

_KWARGS_DESCRIPTION = """
Args:
    predictions: waveforms (lists of floats, `(samples,)`).
    references: reference waveforms (the prompt, or the ground truth of the same text).
    sampling_rate: rate of all waveforms in Hz (required).
    reference: "prompt" (statistics differences only) or "ground_truth" (also pitch_pearson, pitch_rmse_hz).
    hop_length: pitch analysis step in samples (default 10 ms).
Returns:
    pitch_mean_diff, pitch_std_diff, pitch_skewness_diff, pitch_kurtosis_diff (means over pairs), and with
    reference="ground_truth" pitch_pearson and pitch_rmse_hz (means over pairs).
"""

_CITATION = """@article{shen2023naturalspeech2, title={NaturalSpeech 2: Latent Diffusion Models are Natural and Zero-Shot
Speech and Singing Synthesizers}, author={Shen, Kai and Ju, Zeqian and Tan, Xu and others}, journal={arXiv:2304.09116}, year={2023}}"""


class Prosody(evaluate.Metric):
    def _info(self):
        return audio_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references, sampling_rate, reference="prompt", hop_length=None):
        if reference not in ("prompt", "ground_truth"):
            raise ValueError(f"reference must be 'prompt' or 'ground_truth', got {reference!r}.")
        rows = []
        for prediction, target in zip(predictions, references):
            prediction = np.asarray(prediction, np.float32)
            target = np.asarray(target, np.float32)
            row = statistics_difference(
                pitch_statistics(prediction, sampling_rate, hop_length), pitch_statistics(target, sampling_rate, hop_length)
            )
            if reference == "ground_truth":
                row.update(pitch_agreement(prediction, target, sampling_rate, hop_length))
            rows.append(row)
        return mean_of_rows(rows)
