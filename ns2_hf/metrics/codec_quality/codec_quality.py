"""`evaluate` module: reconstruction quality of a codec — multi-resolution mel distance, SI-SNR,
wide-band PESQ and STOI of each reconstruction against its original.

Wraps `ns2_hf.metrics.multi_resolution_mel_distance`, `si_snr`, `pesq_wideband` and `stoi`.
"""

import evaluate
import numpy as np

from ns2_hf.metrics import multi_resolution_mel_distance
from ns2_hf.metrics import pesq_wideband
from ns2_hf.metrics import si_snr
from ns2_hf.metrics import stoi
from ns2_hf.metrics.module_info import audio_metric_info

_DESCRIPTION = "Multi-resolution mel distance, SI-SNR (dB), wide-band PESQ and STOI of reconstructions against originals."

_KWARGS_DESCRIPTION = """
Args:
    predictions: reconstructed waveforms (lists of floats, `(samples,)`).
    references: the original waveforms (cropped together to the shorter length).
    sampling_rate: rate of all waveforms in Hz (required).
Returns:
    mel_distance, si_snr, pesq, stoi: means over pairs.
"""

_CITATION = """@inproceedings{leroux2019sdr, title={SDR -- half-baked or well done?}, author={Le Roux, Jonathan and Wisdom, Scott
and Erdogan, Hakan and Hershey, John R.}, booktitle={ICASSP}, year={2019}}"""


class CodecQuality(evaluate.Metric):
    def _info(self):
        return audio_metric_info(_DESCRIPTION, _CITATION, _KWARGS_DESCRIPTION)

    def _compute(self, predictions, references, sampling_rate):
        functions = {"mel_distance": multi_resolution_mel_distance, "si_snr": si_snr, "pesq": pesq_wideband, "stoi": stoi}
        pairs = [(np.asarray(prediction, np.float32), np.asarray(reference, np.float32)) for prediction, reference in zip(predictions, references)]
        return {name: float(np.mean([function(*pair, sampling_rate) for pair in pairs])) for name, function in functions.items()}
