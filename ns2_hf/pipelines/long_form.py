"""Long-form speech: a page of text spoken by `NS2Pipeline` in chunks, joined with short pauses.

One pipeline call speaks its whole text as one sequence, so its time and memory grow faster than the text
(the phoneme encoder's self-attention is quadratic) and a long text leaves the lengths the model was
trained on. `speak_long_text` instead

1. splits the text into sentences, and long sentences at clause boundaries (`ns2_hf.text.segmentation`,
   at most `max_phonemes_per_chunk` phonemes each);
2. encodes the prompt once (`NS2Pipeline.encode_voice`) and gives every call that voice;
3. runs the pipeline's public `__call__` on `batch_size` chunks at a time (chunk i seeded with `seed + i`,
   so the speech does not depend on `batch_size`), with a progress bar over chunks;
4. joins the chunks with pauses: `sentence_pause` seconds after a sentence, `clause_pause` inside one,
   each join faded over `fade_seconds` so no click is heard.

Time and peak memory therefore grow linearly with the text: each call holds at most `batch_size` chunks
of at most `max_phonemes_per_chunk` phonemes; only the output waveform grows with the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..text.segmentation import TextChunk, split_text

#: Silence after a sentence and inside one (at a clause cut), in seconds — about what read speech leaves.
SENTENCE_PAUSE_SECONDS = 0.35
CLAUSE_PAUSE_SECONDS = 0.12
#: Linear fade at each join, in seconds (a chunk's first/last samples are not always zero).
FADE_SECONDS = 0.01


@dataclass
class LongFormOutput:
    """Output of `speak_long_text`.

    Args:
        audio: the joined speech, `(samples,)` float32.
        sampling_rate: its rate (the codec's).
        chunks: the chunks spoken, in order.
        chunk_starts: where each chunk's speech starts in `audio`, in samples.
    """

    audio: np.ndarray
    sampling_rate: int
    chunks: List[TextChunk]
    chunk_starts: List[int]


def _faded(audio: np.ndarray, fade_samples: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    audio = np.array(audio, dtype=np.float32)
    length = min(fade_samples, len(audio) // 2)
    if length > 0:
        ramp = np.linspace(0.0, 1.0, length, endpoint=False, dtype=np.float32)
        if fade_in:
            audio[:length] *= ramp
        if fade_out:
            audio[-length:] *= ramp[::-1]
    return audio


def speak_long_text(
    pipeline,
    text: str,
    prompt_audio,
    prompt_sampling_rate: Optional[int] = None,
    max_phonemes_per_chunk: int = 100,
    batch_size: int = 4,
    seed: int = 0,
    sentence_pause: float = SENTENCE_PAUSE_SECONDS,
    clause_pause: float = CLAUSE_PAUSE_SECONDS,
    fade_seconds: float = FADE_SECONDS,
    progress: bool = True,
    **pipeline_kwargs,
) -> LongFormOutput:
    """Speak `text` of any length in the voice of `prompt_audio` (see the module docstring).

    Args:
        pipeline: an `NS2Pipeline`.
        text: the text, a sentence or many pages.
        prompt_audio, prompt_sampling_rate: the voice, as for `NS2Pipeline.__call__`.
        max_phonemes_per_chunk: longest chunk in phonemes (see `split_text`); smaller chunks cost less memory.
        batch_size: chunks per pipeline call; peak memory grows with `batch_size * max_phonemes_per_chunk`.
        seed: chunk i's initial noise comes from `torch.Generator().manual_seed(seed + i)`; a text of one
            chunk gives exactly `pipeline(text, ..., generator=torch.Generator().manual_seed(seed))`.
        sentence_pause, clause_pause: silence inserted after a sentence / at a cut inside one, in seconds.
        fade_seconds: linear fade-out and fade-in at each join.
        progress: show a progress bar over chunks (the pipeline's own per-step bar is hidden meanwhile).
        pipeline_kwargs: passed to every `pipeline(...)` call (`num_inference_steps`, `temperature`, `speed`).

    Returns:
        [`LongFormOutput`].

    Raises:
        TextInputError: the text has no pronounceable word; AudioInputError: the prompt cannot be used;
        GenerationArgumentError: a generation argument is out of range.
        ValueError: `batch_size` below 1, or a negative pause or fade.
    """
    import torch
    from tqdm.auto import tqdm

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if min(sentence_pause, clause_pause, fade_seconds) < 0:
        raise ValueError("`sentence_pause`, `clause_pause` and `fade_seconds` must not be negative.")
    chunks = split_text(text, max_phonemes_per_chunk)
    sampling_rate = pipeline.sampling_rate
    voice = pipeline.encode_voice(prompt_audio, prompt_sampling_rate)

    progress_bar_config = dict(getattr(pipeline, "_progress_bar_config", {}))
    pipeline.set_progress_bar_config(disable=True)
    chunk_audios: List[np.ndarray] = []
    try:
        with tqdm(total=len(chunks), desc="chunks", unit="chunk", disable=not progress) as bar:
            for start in range(0, len(chunks), batch_size):
                batch = chunks[start : start + batch_size]
                output = pipeline(
                    [chunk.text for chunk in batch],
                    voice=voice,
                    generator=[torch.Generator().manual_seed(seed + start + index) for index in range(len(batch))],
                    **pipeline_kwargs,
                )
                chunk_audios.extend(np.asarray(audio, dtype=np.float32) for audio in output.audios)
                bar.update(len(batch))
    finally:
        pipeline.set_progress_bar_config(**progress_bar_config)

    fade_samples = int(round(fade_seconds * sampling_rate))
    pieces, chunk_starts, position = [], [], 0
    for index, (chunk, audio) in enumerate(zip(chunks, chunk_audios)):
        last = index == len(chunks) - 1
        audio = _faded(audio, fade_samples, fade_in=index > 0, fade_out=not last)
        chunk_starts.append(position)
        pieces.append(audio)
        position += len(audio)
        if not last:
            pause = np.zeros(int(round((sentence_pause if chunk.ends_sentence else clause_pause) * sampling_rate)), np.float32)
            pieces.append(pause)
            position += len(pause)
    return LongFormOutput(np.concatenate(pieces), sampling_rate, chunks, chunk_starts)
