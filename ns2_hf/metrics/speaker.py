"""Speaker similarity: cosine similarity of speaker embeddings (SIM in the NS2 paper's tables).

The default embedding is Resemblyzer's d-vector (a 3-layer LSTM trained for speaker
verification; code and weights kept in `voice_encoder.py`, its results identical to resemblyzer 0.1.4's): on the project corpus two clips of one voice
score ≈ 0.87 and two different voices ≈ 0.53. Any `transformers` x-vector checkpoint
(`AutoModelForAudioXVector`, e.g. a WavLM/UniSpeech-SAT speaker-verification model — the NS2/NS3
papers used WavLM-TDNN) can be used instead by passing its folder (or Hub name) as
`speaker_encoder`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np

from ..audio.io import AudioInputError, AudioLike, check_waveform, load_audio
from . import voice_encoder

# Resemblyzer's encoder works on 16 kHz audio.
RESEMBLYZER_SAMPLING_RATE = voice_encoder.SAMPLING_RATE


@lru_cache(maxsize=2)
def _transformers_encoder(model_name_or_path: str):
    from transformers import AutoFeatureExtractor
    from transformers import AutoModelForAudioXVector

    feature_extractor = AutoFeatureExtractor.from_pretrained(model_name_or_path)
    model = AutoModelForAudioXVector.from_pretrained(model_name_or_path).eval()
    return feature_extractor, model


def speaker_embedding(
    audio: AudioLike, sampling_rate: Optional[int] = None, speaker_encoder: Optional[str] = None
) -> np.ndarray:
    """Unit-norm speaker embedding `(embedding_dim,)` of one utterance.

    Args:
        audio: a file path or a `(samples,)` waveform (then `sampling_rate` is required).
        sampling_rate: rate of an array `audio`; resampled to what the encoder needs.
        speaker_encoder: `None` for Resemblyzer (256-d; it trims long silences with a VAD and
            normalises loudness first), or an `AutoModelForAudioXVector` checkpoint folder / Hub
            name. Encoders are loaded once and cached.

    Raises:
        AudioInputError: for unusable audio: silent, or with no speech left after the VAD.
    """
    import torch

    if speaker_encoder is None:
        waveform = load_audio(audio, sampling_rate, RESEMBLYZER_SAMPLING_RATE, name="audio for speaker embedding")
        waveform = check_waveform(
            waveform, None, RESEMBLYZER_SAMPLING_RATE, name="audio for speaker embedding", allow_silence=False
        )
        speech = voice_encoder.preprocess(waveform)
        if speech.size == 0:
            raise AudioInputError("audio for speaker embedding has no speech (the VAD removed all of it).")
        embedding = voice_encoder.embed_utterance(speech)
    else:
        feature_extractor, model = _transformers_encoder(str(speaker_encoder))
        rate = feature_extractor.sampling_rate
        waveform = load_audio(audio, sampling_rate, rate, name="audio for speaker embedding")
        waveform = check_waveform(waveform, None, rate, name="audio for speaker embedding", allow_silence=False)
        inputs = feature_extractor(waveform, sampling_rate=rate, return_tensors="pt")
        with torch.no_grad():
            embedding = model(**inputs).embeddings[0].numpy()
    embedding = np.asarray(embedding, dtype=np.float64)
    return embedding / max(float(np.linalg.norm(embedding)), 1e-12)


def speaker_similarity(
    audio: AudioLike,
    other_audio: AudioLike,
    sampling_rate: Optional[int] = None,
    speaker_encoder: Optional[str] = None,
) -> float:
    """Cosine similarity in [-1, 1] of the speaker embeddings of two utterances (1 = same voice).

    Both arrays (if arrays) share `sampling_rate`. See :func:`speaker_embedding` for the encoders.
    """
    first = speaker_embedding(audio, sampling_rate, speaker_encoder)
    second = speaker_embedding(other_audio, sampling_rate, speaker_encoder)
    return float(np.dot(first, second))
