"""The training-time speech prompter: cut a segment of each utterance to serve as its prompt.

NaturalSpeech 2 trains the prompt mechanism by cutting a random segment out of the target
utterance's latents as the prompt and generating the rest. Here the segment is a contiguous run
of whole phones covering a random fraction (in frames) of the utterance; the target is what is
left, the part before and the part after concatenated (phones, durations and frames alike).
When the utterances carry their frames' voicing (`voiced`), it is cut the same way, and the prompt
segment's log-f0 and voicing are returned too: a model with prompt-anchored pitch normalises the
target's pitch by the prompt's own voiced statistics (`ns2_hf.ns2.prompt_pitch`).
Utterances without `latents` (where no codec is at hand: a DataLoader worker) are cut by their codes alone, and
the prompt comes back as `prompt_codes`; the caller turns codes into latents (`codes_to_latents` is frame by frame,
so cutting codes and cutting latents give the same latents).
"""

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch.nn.utils.rnn import pad_sequence

UTTERANCE_KEYS = ("phoneme_ids", "durations", "codes", "log_f0")
#: Optional per-frame key: the codec latents `(D, F)`; without them the prompt is cut from the codes.
LATENTS_KEY = "latents"
#: Optional per-frame key: voicing `(F,)` bool, passed on to the model for prompt-anchored pitch.
VOICED_KEY = "voiced"


class UtteranceTooShortError(ValueError):
    """Raised for an utterance that cannot be split into a prompt and a target: it needs at least
    two phones with a non-zero duration."""


class NS2SpeechPrompter:
    """Splits utterances into (prompt, target) and pads them into a batch for `NS2Model.forward`.

    The prompt covers a fraction r ~ U(min_ratio, max_ratio) of the utterance's frames: among
    the phones with a non-zero duration, a start phone is drawn uniformly from those from which
    the shortest run of whole phones reaching ⌈r·F⌉ frames leaves at least one frame to the
    target; the prompt is that run (so it may hold a little more than r·F frames). With
    `max_ratio` ≤ 0.5 such a start exists for every utterance with at least two phones that have
    frames; shorter utterances raise :class:`UtteranceTooShortError` (filter them out of the data).

    Args:
        min_ratio, max_ratio: range of the prompt's share of the frames, 0 < min ≤ max ≤ 0.5.
        generator: a seeded `torch.Generator` makes the cuts reproducible (None: torch's global RNG).
        pad_token_id: id used to pad phoneme ids (the tokenizer's `<pad>`).
    """

    def __init__(
        self,
        min_ratio: float = 0.1,
        max_ratio: float = 0.5,
        generator: Optional[torch.Generator] = None,
        pad_token_id: int = 0,
    ):
        if not 0.0 < min_ratio <= max_ratio <= 0.5:
            raise ValueError(f"need 0 < min_ratio <= max_ratio <= 0.5, got {min_ratio} and {max_ratio}")
        self.min_ratio = min_ratio
        self.max_ratio = max_ratio
        self.generator = generator
        self.pad_token_id = pad_token_id

    def choose_span(self, durations: torch.Tensor) -> Tuple[int, int]:
        """Draw the prompt's phones `[start, end)` for one utterance.

        Args:
            durations: `(L,)` long frames per phone.

        Returns:
            `(start, end)` phone indices; the prompt's frames are those of phones start..end-1.

        Raises:
            UtteranceTooShortError: if fewer than two phones have frames.
        """
        num_frames = int(durations.sum())
        ratio = self.min_ratio + (self.max_ratio - self.min_ratio) * float(torch.rand(1, generator=self.generator))
        wanted = max(1, math.ceil(ratio * num_frames))
        ends = durations.cumsum(0)
        starts = ends - durations
        # for every start phone at once: the shortest run start..end-1 holding at least `wanted` frames
        run_ends = torch.searchsorted(ends, starts + wanted) + 1
        reaches = run_ends <= len(durations)
        run_frames = ends[run_ends.clamp(max=len(durations)) - 1] - starts
        valid = (durations > 0) & reaches & (run_frames < num_frames)
        candidates = list(zip(valid.nonzero().flatten().tolist(), run_ends[valid].tolist()))
        if not candidates:
            raise UtteranceTooShortError(
                f"cannot cut a prompt from an utterance of {num_frames} frames whose durations are "
                f"{durations.tolist()}: it needs at least two phones with frames"
            )
        return candidates[int(torch.randint(len(candidates), (1,), generator=self.generator))]

    def split(self, utterance: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Cut one utterance into prompt and target.

        Args:
            utterance: `phoneme_ids (L,)` long, `durations (L,)` long summing to F,
                `codes (n_q, F)` long, `log_f0 (F,)`, optionally `latents (D, F)` and `voiced (F,)` bool.

        Returns:
            The target's `phoneme_ids`, `durations`, `latents (D, F_t)`, `codes (n_q, F_t)`,
            `log_f0 (F_t,)` and the `prompt_latents (D, F − F_t)` (without `latents`: no target latents, and
            `prompt_codes (n_q, F − F_t)` instead); with `voiced` also the target's `voiced (F_t,)` and the
            prompt's `prompt_log_f0` and `prompt_voiced` `(F − F_t,)`.
        """
        durations = utterance["durations"].cpu()  # a few numbers: read once, not one GPU sync per phone
        start, end = self.choose_span(durations)
        frame_start = int(durations[:start].sum())
        frame_end = frame_start + int(durations[start:end].sum())
        target = {
            key: torch.cat([utterance[key][:start], utterance[key][end:]])
            for key in ("phoneme_ids", "durations")
        }
        with_voicing, with_latents = VOICED_KEY in utterance, LATENTS_KEY in utterance
        for key in (LATENTS_KEY,) * with_latents + ("codes", "log_f0") + (VOICED_KEY,) * with_voicing:
            frames = utterance[key]
            target[key] = torch.cat([frames[..., :frame_start], frames[..., frame_end:]], dim=-1)
        prompt_keys = (LATENTS_KEY if with_latents else "codes",) + ("log_f0", VOICED_KEY) * with_voicing
        target.update({f"prompt_{key}": utterance[key][..., frame_start:frame_end] for key in prompt_keys})
        return target

    def __call__(self, utterances: Sequence[Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """Split every utterance and pad the results into a batch.

        Args:
            utterances: per utterance `phoneme_ids (L,)`, `durations (L,)`, `codes (n_q, F)`, `log_f0 (F,)`
                (durations summing to F), and either all or none of them `latents (D, F)`, and either all or
                none `voiced (F,)` bool.

        Returns:
            The data arguments of `NS2Model.forward` (it also takes the codec's `codebooks`):
            `phoneme_ids (B, L)` padded with `pad_token_id`, `phoneme_mask (B, L)`,
            `durations (B, L)` (0 at padding), `log_f0 (B, F)`, `latents (B, D, F)`,
            `latent_mask (B, F)`, `codes (B, n_q, F)`, `prompt_latents (B, D, P)`,
            `prompt_mask (B, P)`; padding is zero and masks are True on valid positions. When the
            utterances carry `voiced`: also `voiced (B, F)`, `prompt_log_f0 (B, P)` and
            `prompt_voiced (B, P)` (False at padding). Without `latents`: neither `latents` nor
            `prompt_latents`, but `prompt_codes (B, n_q, P)` (0 at padding).
        """
        if len(utterances) == 0:
            raise ValueError("need at least one utterance")
        for index, utterance in enumerate(utterances):
            _check_utterance(utterance, index)
        for key in (VOICED_KEY, LATENTS_KEY):
            carried = [key in utterance for utterance in utterances]
            if any(carried) and not all(carried):
                raise ValueError(f"some utterances carry `{key}` and some do not: give it for all or none")
        with_voicing, with_latents = VOICED_KEY in utterances[0], LATENTS_KEY in utterances[0]
        targets = [self.split(utterance) for utterance in utterances]
        device = targets[0]["codes"].device
        prompt = "prompt_latents" if with_latents else "prompt_codes"
        batch = {
            "phoneme_ids": _pad([t["phoneme_ids"] for t in targets], self.pad_token_id),
            "phoneme_mask": _mask([len(t["phoneme_ids"]) for t in targets], device),
            "durations": _pad([t["durations"] for t in targets], 0),
            "log_f0": _pad([t["log_f0"] for t in targets], 0.0),
            "latent_mask": _mask([t["codes"].shape[-1] for t in targets], device),
            "codes": _pad_frames([t["codes"] for t in targets]),
            prompt: _pad_frames([t[prompt] for t in targets]),
            "prompt_mask": _mask([t[prompt].shape[-1] for t in targets], device),
        }
        if with_latents:
            batch[LATENTS_KEY] = _pad_frames([t[LATENTS_KEY] for t in targets])
        if with_voicing:
            batch[VOICED_KEY] = _pad([t[VOICED_KEY].bool() for t in targets], False)
            batch["prompt_log_f0"] = _pad([t["prompt_log_f0"] for t in targets], 0.0)
            batch["prompt_voiced"] = _pad([t["prompt_voiced"].bool() for t in targets], False)
        return batch


def _check_utterance(utterance: Mapping[str, torch.Tensor], index: int) -> None:
    missing = [key for key in UTTERANCE_KEYS if key not in utterance]
    if missing:
        raise ValueError(f"utterance {index} lacks {missing}")
    phoneme_ids, durations = utterance["phoneme_ids"], utterance["durations"]
    codes, log_f0 = utterance["codes"], utterance["log_f0"]
    latents = utterance.get(LATENTS_KEY, codes)  # without latents, the codes stand in for the checks
    if phoneme_ids.dim() != 1 or durations.shape != phoneme_ids.shape:
        raise ValueError(f"utterance {index}: phoneme_ids and durations must both be (L,)")
    if durations.is_floating_point() or (durations < 0).any():
        raise ValueError(f"utterance {index}: durations must be non-negative integers")
    if latents.dim() != 2 or codes.dim() != 2 or log_f0.dim() != 1:
        raise ValueError(f"utterance {index}: need latents (D, F), codes (n_q, F) and log_f0 (F,)")
    num_frames = latents.shape[1]
    if codes.shape[1] != num_frames or log_f0.shape[0] != num_frames:
        raise ValueError(
            f"utterance {index}: latents, codes and log_f0 disagree on the frame count "
            f"({num_frames}, {codes.shape[1]}, {log_f0.shape[0]})"
        )
    if VOICED_KEY in utterance and utterance[VOICED_KEY].shape != (num_frames,):
        raise ValueError(f"utterance {index}: voiced has shape {tuple(utterance[VOICED_KEY].shape)}, need ({num_frames},)")
    if int(durations.sum()) != num_frames:
        raise ValueError(f"utterance {index}: durations sum to {int(durations.sum())}, not the {num_frames} frames")


def _pad(sequences: List[torch.Tensor], value) -> torch.Tensor:
    """`(length,)` tensors → `(batch, longest)`."""
    return pad_sequence(sequences, batch_first=True, padding_value=value)


def _pad_frames(sequences: List[torch.Tensor]) -> torch.Tensor:
    """`(channels, frames)` tensors → `(batch, channels, longest)`, zero-padded."""
    return pad_sequence([s.transpose(0, 1) for s in sequences], batch_first=True).permute(0, 2, 1)


def _mask(lengths: List[int], device: torch.device) -> torch.Tensor:
    """Lengths → `(batch, longest)` bool on `device`, True on the first `length` positions."""
    lengths = torch.tensor(lengths, device=device)
    return torch.arange(int(lengths.max()), device=device).unsqueeze(0) < lengths.unsqueeze(1)
