"""The training speech prompter: prompt and target partition each utterance along phone borders."""

import math

import pytest
import torch

from ns2_hf.ns2 import NS2SpeechPrompter, UtteranceTooShortError

LATENT_DIM, NUM_QUANTIZERS = 4, 3


def make_utterance(durations, seed=0):
    """An utterance whose frame features encode the frame index, so cuts can be traced back."""
    durations = torch.tensor(durations)
    num_frames = int(durations.sum())
    generator = torch.Generator().manual_seed(seed)
    frame_index = torch.arange(num_frames)
    return {
        "phoneme_ids": torch.randint(1, 50, (len(durations),), generator=generator),
        "durations": durations,
        "latents": frame_index.float().expand(LATENT_DIM, -1) + 1000 * torch.arange(LATENT_DIM)[:, None],
        "codes": frame_index.expand(NUM_QUANTIZERS, -1).clone(),
        "log_f0": frame_index.float() / 10,
    }


def split_back(batch, index):
    """Valid target/prompt frame indices of item `index` (read back from the encoded features)."""
    target_frames = batch["codes"][index, 0][batch["latent_mask"][index]]
    prompt_frames = batch["prompt_latents"][index, 0][batch["prompt_mask"][index]].long()
    return target_frames, prompt_frames


def test_prompt_and_target_partition_each_utterance():
    utterances = []
    for length in (30, 12, 45):
        durations = torch.randint(0, 7, (length,))
        durations[0], durations[-1] = 3, 2  # at least two phones with frames
        utterances.append(make_utterance(durations.tolist(), seed=length))
    prompter = NS2SpeechPrompter(min_ratio=0.2, max_ratio=0.5, generator=torch.Generator().manual_seed(1))
    for _ in range(10):
        batch = prompter(utterances)
        for index, utterance in enumerate(utterances):
            num_frames = utterance["latents"].shape[1]
            target_frames, prompt_frames = split_back(batch, index)
            # the prompt is one contiguous run; the target is everything else, in order
            assert torch.equal(prompt_frames, torch.arange(int(prompt_frames[0]), int(prompt_frames[-1]) + 1))
            assert torch.equal(torch.sort(torch.cat([target_frames, prompt_frames])).values, torch.arange(num_frames))
            assert torch.equal(target_frames, torch.sort(target_frames).values)
            assert 0.2 * num_frames <= len(prompt_frames) < num_frames
            # cut on phone borders; target durations sum to the target frames
            ends = utterance["durations"].cumsum(0).tolist()
            assert int(prompt_frames[0]) in [0] + ends and int(prompt_frames[-1]) + 1 in ends
            durations = batch["durations"][index][batch["phoneme_mask"][index]]
            assert int(durations.sum()) == len(target_frames)
            # the other frame features followed the same cut
            assert torch.allclose(batch["log_f0"][index][batch["latent_mask"][index]], target_frames.float() / 10)
            assert torch.equal(batch["latents"][index, 1][batch["latent_mask"][index]], 1000 + target_frames.float())
        # padding is zero and masked
        assert not batch["durations"][~batch["phoneme_mask"]].any()
        assert not batch["phoneme_ids"][~batch["phoneme_mask"]].any()
        assert not batch["log_f0"][~batch["latent_mask"]].any()
        assert not batch["latents"].transpose(1, 2)[~batch["latent_mask"]].any()
        assert not batch["prompt_latents"].transpose(1, 2)[~batch["prompt_mask"]].any()


def test_target_phones_are_the_phones_outside_the_prompt():
    utterance = make_utterance([2, 3, 0, 4, 5, 6, 1, 2, 3])
    # two prompters with the same seed draw the same spans
    drawing = NS2SpeechPrompter(generator=torch.Generator().manual_seed(0))
    splitting = NS2SpeechPrompter(generator=torch.Generator().manual_seed(0))
    for _ in range(20):
        start, end = drawing.choose_span(utterance["durations"])
        target = splitting.split(utterance)
        for key in ("phoneme_ids", "durations"):
            assert torch.equal(target[key], torch.cat([utterance[key][:start], utterance[key][end:]]))
        frame_start = int(utterance["durations"][:start].sum())
        frame_end = int(utterance["durations"][:end].sum())
        assert torch.equal(target["prompt_latents"], utterance["latents"][:, frame_start:frame_end])


@pytest.mark.parametrize(
    "durations, ratio, spans",
    [
        ([6, 4], 0.5, {(0, 1)}),  # 5 frames wanted: only the 6-frame phone reaches them and leaves a target
        ([4, 6], 0.5, {(1, 2)}),  # starting at phone 0 would need both phones
        ([3, 3, 3, 3], 0.25, {(0, 1), (1, 2), (2, 3), (3, 4)}),
        ([3, 3, 3, 3], 0.5, {(0, 2), (1, 3), (2, 4)}),
    ],
)
def test_known_spans(durations, ratio, spans):
    prompter = NS2SpeechPrompter(min_ratio=ratio, max_ratio=ratio, generator=torch.Generator().manual_seed(0))
    assert {prompter.choose_span(torch.tensor(durations)) for _ in range(40)} == spans


def test_spans_are_the_shortest_whole_phone_runs_a_brute_force_search_finds():
    """The vectorised search draws the same span as enumerating every (start, end) pair by hand, with the same
    random numbers, on random durations with zeros (phones without frames) among them."""
    data = torch.Generator().manual_seed(5)
    for trial in range(200):
        durations = torch.randint(0, 6, (int(torch.randint(2, 40, (1,), generator=data)),), generator=data)
        durations[0], durations[-1] = 1, 1
        num_frames = int(durations.sum())
        seed = 100 + trial
        reference = torch.Generator().manual_seed(seed)
        ratio = 0.1 + 0.4 * float(torch.rand(1, generator=reference))
        wanted = max(1, math.ceil(ratio * num_frames))
        candidates = []
        for start in range(len(durations)):
            if durations[start] == 0:
                continue
            for end in range(start + 1, len(durations) + 1):  # the first end whose run holds `wanted` frames
                frames = int(durations[start:end].sum())
                if frames >= wanted:
                    if frames < num_frames:
                        candidates.append((start, end))
                    break
        expected = candidates[int(torch.randint(len(candidates), (1,), generator=reference))]
        prompter = NS2SpeechPrompter(0.1, 0.5, generator=torch.Generator().manual_seed(seed))
        assert prompter.choose_span(durations) == expected, durations.tolist()


def test_seeded_generator_makes_cuts_reproducible():
    utterances = [make_utterance(list(range(1, 15)), seed=3), make_utterance([2] * 20, seed=4)]
    first = NS2SpeechPrompter(generator=torch.Generator().manual_seed(7))
    second = NS2SpeechPrompter(generator=torch.Generator().manual_seed(7))
    other = NS2SpeechPrompter(generator=torch.Generator().manual_seed(8))
    batches = [[prompter(utterances) for _ in range(5)] for prompter in (first, second, other)]
    for a, b in zip(batches[0], batches[1]):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[key], b[key]) for key in a)
    assert any(
        not torch.equal(a["prompt_mask"], c["prompt_mask"]) or not torch.equal(a["latents"], c["latents"])
        for a, c in zip(batches[0], batches[2])
    )


@pytest.mark.parametrize("durations", [[5], [0, 7, 0], [1]])
def test_utterance_with_one_voiced_phone_raises(durations):
    prompter = NS2SpeechPrompter(generator=torch.Generator().manual_seed(0))
    with pytest.raises(UtteranceTooShortError, match="at least two phones"):
        prompter([make_utterance(durations)])


def test_shortest_splittable_utterance():
    prompter = NS2SpeechPrompter(generator=torch.Generator().manual_seed(0))
    batch = prompter([make_utterance([0, 1, 0, 1])])
    assert int(batch["latent_mask"].sum()) == 1 and int(batch["prompt_mask"].sum()) == 1


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="min_ratio"):
        NS2SpeechPrompter(min_ratio=0.4, max_ratio=0.3)
    with pytest.raises(ValueError, match="max_ratio"):
        NS2SpeechPrompter(max_ratio=0.8)
    prompter = NS2SpeechPrompter()
    utterance = make_utterance([3, 4])
    utterance["durations"] = torch.tensor([3, 5])
    with pytest.raises(ValueError, match="durations sum to 8"):
        prompter([utterance])
    utterance = make_utterance([3, 4])
    utterance["log_f0"] = utterance["log_f0"][:-1]
    with pytest.raises(ValueError, match="frame count"):
        prompter([utterance])
    with pytest.raises(ValueError, match="lacks"):
        prompter([{"phoneme_ids": torch.tensor([1])}])


def test_voicing_is_cut_with_the_frames_and_the_prompts_pitch_comes_along():
    utterances = [make_utterance([3, 4, 2, 5, 1], seed=1), make_utterance([2, 2, 6], seed=2)]
    for utterance in utterances:
        utterance["voiced"] = torch.arange(len(utterance["log_f0"])) % 2 == 0  # even frames voiced
    batch = NS2SpeechPrompter(0.3, 0.5, generator=torch.Generator().manual_seed(0))(utterances)
    for index in range(2):
        target_frames, prompt_frames = split_back(batch, index)
        assert batch["voiced"][index][batch["latent_mask"][index]].tolist() == (target_frames % 2 == 0).tolist()
        assert batch["prompt_voiced"][index][batch["prompt_mask"][index]].tolist() == (prompt_frames % 2 == 0).tolist()
        assert torch.equal(batch["prompt_log_f0"][index][batch["prompt_mask"][index]], prompt_frames.float() / 10)
    assert not batch["voiced"][~batch["latent_mask"]].any() and not batch["prompt_voiced"][~batch["prompt_mask"]].any()
    # without voicing the batch is what it always was; mixing the two is an error
    plain = NS2SpeechPrompter(0.3, 0.5)([make_utterance([3, 4, 2])])
    assert not {"voiced", "prompt_log_f0", "prompt_voiced"} & set(plain)
    with pytest.raises(ValueError, match="all or none"):
        NS2SpeechPrompter(0.3, 0.5)([utterances[0], make_utterance([3, 4, 2])])
    with pytest.raises(ValueError, match="voiced"):
        NS2SpeechPrompter(0.3, 0.5)([dict(utterances[0], voiced=torch.ones(3, dtype=torch.bool))])
