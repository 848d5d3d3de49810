"""Run a set of metrics over utterances and summarise them: the engine of
`training/evaluate_tts.py`, also called by the training validation loop.

Each :class:`EvaluationItem` holds one test sentence: its text, the speech prompt, the system's
output and (optionally) the ground-truth recording. :func:`evaluate_items` scores the system
output and, next to it, the ground truth with the same metrics (the reference row of the NS2
tables: WER of the recording, SIM of the recording to the prompt, its DNSMOS ...). Metrics that
compare against the ground truth (MCD, f0 correlation, SIM-to-GT, reconstruction quality) are
computed for the system only.

A metric that cannot be computed for one utterance (e.g. no voiced frame for pitch statistics,
no speech for PESQ) is left out of that utterance's row, the reason appended to its `errors`,
and the summary counts how many utterances each mean covers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .asr import character_error_rate, transcribe, word_error_rate
from .frame_buzz import frame_rate_buzz
from .mos import dnsmos
from .prosody_stats import (
    duration_agreement,
    duration_statistics,
    pitch_agreement,
    pitch_against_prompt,
    pitch_kept,
    pitch_statistics,
    statistics_difference,
)
from .reconstruction import multi_resolution_mel_distance, pesq_wideband, si_snr, stoi
from .speaker import speaker_similarity
from .spectral import spectral_distortion

logger = logging.getLogger(__name__)

TTS_METRICS = ("wer", "speaker_similarity", "dnsmos", "prosody", "mcd", "buzz")
CODEC_METRICS = ("codec_quality", "dnsmos", "buzz")
SYSTEMS = ("ground_truth", "model")
# Row fields that are not metric values.
_NON_METRIC_FIELDS = ("id", "system", "text", "transcript", "errors")


@dataclass
class EvaluationItem:
    """One test utterance. Waveforms are `(samples,)` float arrays at the `sampling_rate` given to
    :func:`evaluate_items`.

    Attributes:
        id: a name for the utterance (file stem).
        text: what is said (needed for WER/CER).
        prompt: the speech prompt (needed for SIM-to-prompt and prosody differences).
        other_speaker_prompt: a recording of a different speaker: SIM to it (`sim_other`) is the
            floor that `sim_prompt` must beat for the output to carry the prompt's voice.
        audio: the system's output; `None` scores only the ground truth.
        ground_truth: the recording of `text` by the prompt's speaker.
        durations: phone durations of `audio` in seconds (e.g. the pipeline's, frames × hop / rate).
        ground_truth_durations: phone durations of `ground_truth` in seconds.
    """

    id: str
    text: Optional[str] = None
    prompt: Optional[np.ndarray] = None
    other_speaker_prompt: Optional[np.ndarray] = None
    audio: Optional[np.ndarray] = None
    ground_truth: Optional[np.ndarray] = None
    durations: Optional[Sequence[float]] = None
    ground_truth_durations: Optional[Sequence[float]] = None


def _score_system(item, system, metrics, sampling_rate, asr, speaker_encoder, prompt_statistics, frame_rate) -> Dict:
    is_model = system == "model"
    audio = item.audio if is_model else item.ground_truth
    durations = item.durations if is_model else item.ground_truth_durations
    reference = item.ground_truth if is_model else None
    row = {"id": item.id, "system": system, "errors": []}

    def attempt(name, compute):
        try:
            row.update(compute())
        except (ValueError, RuntimeError) as error:  # AudioInputError is a ValueError; PESQ raises RuntimeError
            row["errors"].append(f"{name}: {error}")
            logger.warning("%s (%s): %s failed: %s", item.id, system, name, error)

    if "wer" in metrics and item.text:
        def intelligibility():
            hypothesis = transcribe(audio, sampling_rate, asr=asr)
            return {
                "text": item.text,
                "transcript": hypothesis,
                "wer": word_error_rate(hypothesis, item.text),
                "cer": character_error_rate(hypothesis, item.text),
            }

        attempt("wer", intelligibility)
    if "speaker_similarity" in metrics:
        if item.prompt is not None:
            attempt("sim_prompt", lambda: {"sim_prompt": speaker_similarity(audio, item.prompt, sampling_rate, speaker_encoder)})
        if item.other_speaker_prompt is not None:
            attempt(
                "sim_other",
                lambda: {"sim_other": speaker_similarity(audio, item.other_speaker_prompt, sampling_rate, speaker_encoder)},
            )
        if reference is not None:
            attempt("sim_gt", lambda: {"sim_gt": speaker_similarity(audio, reference, sampling_rate, speaker_encoder)})
    if "dnsmos" in metrics:
        attempt("dnsmos", lambda: dnsmos(audio, sampling_rate))
    if "prosody" in metrics:
        if prompt_statistics is not None:
            def pitch_versus_prompt():
                statistics = pitch_statistics(audio, sampling_rate)
                return {**statistics_difference(statistics, prompt_statistics), **pitch_against_prompt(statistics, prompt_statistics)}

            attempt("pitch statistics", pitch_versus_prompt)
        if reference is not None:
            attempt("pitch agreement", lambda: pitch_agreement(audio, reference, sampling_rate))
        if durations is not None:
            attempt("duration statistics", lambda: duration_statistics(durations))
            if is_model and item.ground_truth_durations is not None:
                attempt("duration agreement", lambda: duration_agreement(durations, item.ground_truth_durations))
    if "buzz" in metrics and frame_rate is not None:
        def buzz():
            measured = frame_rate_buzz(audio, sampling_rate, frame_rate)
            return {"buzz_share": measured["buzz_share"], "grid_lock": measured["grid_lock"]}

        attempt("buzz", buzz)
    if "mcd" in metrics and reference is not None:
        attempt("mcd", lambda: spectral_distortion(audio, reference, sampling_rate))
    if "codec_quality" in metrics and reference is not None:
        attempt("mel_distance", lambda: {"mel_distance": multi_resolution_mel_distance(audio, reference, sampling_rate)})
        attempt("si_snr", lambda: {"si_snr": si_snr(audio, reference, sampling_rate)})
        attempt("pesq", lambda: {"pesq": pesq_wideband(audio, reference, sampling_rate)})
        attempt("stoi", lambda: {"stoi": stoi(audio, reference, sampling_rate)})
        attempt("pitch kept", lambda: pitch_kept(audio, reference, sampling_rate))
    return row


def evaluate_items(
    items: Sequence[EvaluationItem],
    sampling_rate: int,
    metrics: Sequence[str] = TTS_METRICS,
    asr: Optional[str] = None,
    speaker_encoder: Optional[str] = None,
    progress: bool = False,
    frame_rate: Optional[float] = None,
) -> List[Dict]:
    """Score each item's system output and its ground truth.

    Args:
        items: the utterances.
        sampling_rate: rate of every waveform in the items.
        metrics: a subset of `("wer", "speaker_similarity", "dnsmos", "prosody", "mcd", "codec_quality", "buzz")`.
        asr: ASR for WER (see :func:`ns2_hf.metrics.transcribe`).
        speaker_encoder: encoder for SIM (see :func:`ns2_hf.metrics.speaker_embedding`).
        progress: show a tqdm bar.
        frame_rate: the codec's latent frame rate in Hz; needed for "buzz" (the share of voiced frames whose
            f0 sits at the frame rate, and the frame-grid locking ratio; :func:`ns2_hf.metrics.frame_rate_buzz`),
            skipped without it.

    Returns:
        One row per item and system present (`system` = "ground_truth" or "model"): `id`,
        `system`, `errors` (list of strings), `text`/`transcript` with WER, and metric values:
        `wer`, `cer`, `sim_prompt`, `sim_other`, `sim_gt`, `dnsmos_ovrl|sig|bak|p808`,
        `pitch_{mean,std,skewness,kurtosis,median}_diff` (vs prompt), `f0_prompt_ratio` and `f0_prompt_diff_hz` (mean
        f0 against the prompt's: does the output sit in the prompt's voice range), `f0_prompt_median_ratio` (the same
        with medians, robust to octave jumps of the pitch track), `pitch_pearson`, `pitch_rmse_hz`,
        `duration_{mean,std,skewness,kurtosis}`, `duration_pearson`, `duration_rmse`, `mcd`,
        `f0_rmse_cents`, `vuv_error`, `mel_distance`, `si_snr`, `pesq`, `stoi`, `f0_ratio`, `f0_kept`,
        `voiced_ratio` (codec_quality: does the resynthesis keep the recording's pitch;
        :func:`ns2_hf.metrics.pitch_kept`), `buzz_share`, `grid_lock`.
    """
    from tqdm.auto import tqdm

    known = set(TTS_METRICS) | set(CODEC_METRICS)
    unknown = [name for name in metrics if name not in known]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(known)}.")
    rows = []
    for item in tqdm(items, desc="scoring", disable=not progress):
        prompt_statistics = None
        if "prosody" in metrics and item.prompt is not None:
            try:
                prompt_statistics = pitch_statistics(item.prompt, sampling_rate)
            except ValueError as error:
                logger.warning("%s: prompt pitch statistics failed: %s", item.id, error)
        for system in SYSTEMS:
            if (item.audio if system == "model" else item.ground_truth) is not None:
                rows.append(_score_system(item, system, metrics, sampling_rate, asr, speaker_encoder, prompt_statistics,
                                          frame_rate))
    return rows


def summarize(rows: Sequence[Dict]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """`{system: {metric: {"mean", "std", "count"}}}` over rows (NaN values skipped). WER and CER
    here are means of per-utterance rates; corpus-level rates weight long sentences more."""
    summary: Dict[str, Dict[str, Dict[str, float]]] = {}
    for system in SYSTEMS:
        system_rows = [row for row in rows if row["system"] == system]
        names = [key for row in system_rows for key in row if key not in _NON_METRIC_FIELDS]
        for name in dict.fromkeys(names):
            values = np.array([row[name] for row in system_rows if name in row], dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size:
                summary.setdefault(system, {})[name] = {
                    "mean": float(values.mean()),
                    "std": float(values.std()),
                    "count": int(values.size),
                }
    return summary


def format_table(summary: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """A plain-text table, one line per metric, one column (mean ± std (n)) per system."""
    systems = [system for system in SYSTEMS if system in summary]
    names = list(dict.fromkeys(name for system in systems for name in summary[system]))
    header = ["metric"] + [system.replace("_", " ") for system in systems]
    lines = [header]
    for name in names:
        cells = [name]
        for system in systems:
            stats = summary[system].get(name)
            cells.append(f"{stats['mean']:.3f} ± {stats['std']:.3f} ({stats['count']})" if stats else "—")
        lines.append(cells)
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)
