"""Long-form speech: the text split into sentences and clauses (`ns2_hf.text.segmentation`) and spoken in
batched chunks joined with pauses (`ns2_hf.pipelines.long_form`), with the shipped model at 2 steps."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ns2_hf import NS2Pipeline, speak_long_text
from ns2_hf.text import TextInputError, normalize_text, split_text

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPT = REPO_ROOT / "examples" / "prompt.wav"
LONG_SENTENCE = (
    "Mr. Smith, who lived on the hill, walked to the market every morning, carrying a basket of apples, pears "
    "and plums; he sold them to anyone who asked, and he never once complained about the weather, the prices "
    "or the crowds — not even in the coldest weeks of winter."
)
PAGE = " ".join([LONG_SENTENCE, "It rained. Did he mind? No, he did not!", "The birch canoe slid on the smooth planks."] * 4)


@pytest.fixture(scope="module")
def pipeline():
    pipe = NS2Pipeline.from_pretrained()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_split_keeps_every_word_and_cuts_long_sentences_at_clauses():
    chunks = split_text(PAGE, max_phonemes_per_chunk=40)
    assert " ".join(chunk.text for chunk in chunks).split() == normalize_text(PAGE).split()  # nothing lost or moved
    assert all(chunk.num_phonemes <= 40 for chunk in chunks)
    # "Mr." is no sentence end; the long sentence ends only after "winter"
    first_sentence = [chunk.text for chunk in chunks[: next(i for i, c in enumerate(chunks) if c.ends_sentence) + 1]]
    assert first_sentence[0].startswith("Mister Smith,") and first_sentence[-1].endswith("winter.")
    assert len(first_sentence) > 2 and all(text.endswith((",", ";", "—", ".")) for text in first_sentence)
    assert [chunk.text for chunk in chunks[len(first_sentence) : len(first_sentence) + 3]] == ["It rained.", "Did he mind?", "No, he did not!"]
    # a generous limit keeps each sentence whole
    assert len(split_text(PAGE, max_phonemes_per_chunk=1000)) == 4 * 5


def test_split_refuses_text_without_words_and_bad_limits():
    with pytest.raises(TextInputError, match="no pronounceable word"):
        split_text(" ... — !")
    with pytest.raises(ValueError, match="max_phonemes_per_chunk"):
        split_text("Hello.", max_phonemes_per_chunk=0)


def test_one_sentence_is_exactly_the_pipeline_call(pipeline):
    text = "The birch canoe slid on the smooth planks."
    long_form = speak_long_text(pipeline, text, PROMPT, num_inference_steps=2, seed=3, progress=False)
    direct = pipeline(text, prompt_audio=PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(long_form.audio, direct.audios[0])


def test_a_page_is_spoken_in_batches_with_the_prompt_encoded_once(pipeline, monkeypatch):
    calls, prompt_loads = [], []
    original_call, original_load = type(pipeline).__call__, type(pipeline).load_prompt
    monkeypatch.setattr(type(pipeline), "__call__", lambda self, text, **kw: calls.append(len(text)) or original_call(self, text, **kw))
    monkeypatch.setattr(type(pipeline), "load_prompt", lambda self, *a: prompt_loads.append(a[0]) or original_load(self, *a))
    # the prompt is read and encoded once (encode_voice), every call gets the voice
    output = speak_long_text(pipeline, PAGE, PROMPT, num_inference_steps=2, max_phonemes_per_chunk=40, batch_size=4, progress=False)

    assert sum(calls) == len(output.chunks) > 12 and max(calls) == 4
    assert prompt_loads == [PROMPT]
    # every chunk is speech, every join a pause of the documented length (long after a sentence, short inside)
    rate = output.sampling_rate
    ends = output.chunk_starts[1:] + [len(output.audio)]
    for chunk, start, next_start in zip(output.chunks[:-1], output.chunk_starts, output.chunk_starts[1:]):
        pause = output.audio[next_start - int(0.1 * rate) : next_start]
        assert np.abs(pause).max() == 0.0
    lengths = np.diff(output.chunk_starts + [len(output.audio)])
    assert (lengths > 0.3 * rate).all() and np.isfinite(output.audio).all() and len(ends) == len(output.chunks)
    # the same chunks and seeds give the same speech whatever the batch size (chunk i is seeded seed + i), up to
    # float32 batching noise (the harmonic phase integrates the pitch, so a 1e-6 difference in it adds up: measured
    # at most 1.1e-3 on 12 of 1.2M samples)
    one_by_one = speak_long_text(pipeline, PAGE, PROMPT, num_inference_steps=2, max_phonemes_per_chunk=40, batch_size=1, progress=False)
    assert one_by_one.chunk_starts == output.chunk_starts
    np.testing.assert_allclose(one_by_one.audio, output.audio, atol=3e-3)


def test_pauses_are_longer_after_sentences(pipeline):
    output = speak_long_text(pipeline, "It rained, and it poured. Then it stopped.", PROMPT, num_inference_steps=2,
                             max_phonemes_per_chunk=14, progress=False)
    assert [chunk.ends_sentence for chunk in output.chunks] == [False, True, True]
    silent_run = []
    for start in output.chunk_starts[1:]:
        before = output.audio[:start][::-1]
        silent_run.append(int(np.argmax(np.abs(before) > 0)))  # zeros right before the chunk
    assert silent_run[1] - silent_run[0] > 0.15 * output.sampling_rate
