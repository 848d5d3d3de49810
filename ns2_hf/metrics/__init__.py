"""Evaluation metrics for TTS and codecs, as plain functions and as `evaluate` modules.

Plain functions (import from here): intelligibility (`transcribe`, `word_error_rate`,
`character_error_rate`), speaker similarity, prosody statistics (NS2 paper), spectral distortion
(MCD, f0 RMSE, V/UV error), reconstruction quality (multi-resolution mel distance, SI-SNR, PESQ,
STOI), DNSMOS and the codec's frame-rate buzz. Each `evaluate` module wraps the same functions and loads offline:

    import evaluate
    from ns2_hf.metrics import metric_path
    wer = evaluate.load(metric_path("wer"))
    wer.compute(predictions=["hello world"], references=["Hello, world!"])  # {"wer": 0.0, "cer": 0.0}

`evaluate_items` runs a whole set over utterances (system output and ground truth side by side);
`training/evaluate_tts.py` and the training validation loop call it.
"""

from pathlib import Path

from .asr import character_error_rate, normalize_text, transcribe, word_error_rate
from .evaluation import CODEC_METRICS, TTS_METRICS, EvaluationItem, evaluate_items, format_table, summarize
from .frame_buzz import frame_rate_buzz
from .mos import dnsmos
from .prosody_stats import (
    duration_agreement,
    duration_statistics,
    moments,
    pitch_agreement,
    pitch_contour,
    pitch_kept,
    pitch_statistics,
    sequence_agreement,
    statistics_difference,
)
from .reconstruction import multi_resolution_mel_distance, pesq_wideband, si_snr, stoi
from .speaker import speaker_embedding, speaker_similarity
from .spectral import mel_cepstrum, spectral_distortion

METRIC_NAMES = ("wer", "speaker_similarity", "prosody", "mcd", "codec_quality", "dnsmos", "buzz")


def metric_path(name: str) -> str:
    """Path of the `evaluate` module file for `name` (one of `METRIC_NAMES`), for `evaluate.load`."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(METRIC_NAMES)}.")
    return str(Path(__file__).resolve().parent / name / f"{name}.py")


__all__ = [
    "CODEC_METRICS",
    "EvaluationItem",
    "TTS_METRICS",
    "evaluate_items",
    "format_table",
    "summarize",
    "METRIC_NAMES",
    "character_error_rate",
    "dnsmos",
    "duration_agreement",
    "frame_rate_buzz",
    "duration_statistics",
    "mel_cepstrum",
    "metric_path",
    "moments",
    "multi_resolution_mel_distance",
    "normalize_text",
    "pesq_wideband",
    "pitch_agreement",
    "pitch_contour",
    "pitch_kept",
    "pitch_statistics",
    "sequence_agreement",
    "si_snr",
    "spectral_distortion",
    "speaker_embedding",
    "speaker_similarity",
    "statistics_difference",
    "stoi",
    "transcribe",
    "word_error_rate",
]
