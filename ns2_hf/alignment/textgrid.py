"""Reference phone timings from outside tools, and their conversion to codec-frame durations.

Two sources: Praat TextGrids as written by the Montreal Forced Aligner (`read_textgrid`, parsed
here without extra dependencies, long and short text formats alike), and the corpus's festival
`alignments/*.json` files (`read_alignment_json`). Both give `(label, start_s, end_s)` segments;
`durations_from_segments` turns them into integer frame counts that sum exactly to the
utterance's frame count, and `boundary_errors` compares two duration sequences.
"""

from __future__ import annotations

import json
import os
import re
from typing import List, Sequence, Tuple, Union

import numpy as np

Segment = Tuple[str, float, float]
PathLike = Union[str, os.PathLike]

# Tokens of Praat's text format: quoted strings ("" escapes a quote), bracketed indices such as
# `item [2]:` and the `<exists>` flag (both skipped) and numbers. Keys like `xmin =` match none of these.
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|\[[^\]]*\]|<exists>|<absent>|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)')


class TextGridError(ValueError):
    """Raised for a file that is not a readable TextGrid or lacks the requested tier."""


def _read_text(path: PathLike) -> str:
    raw = open(path, "rb").read()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Praat writes UTF-16 when labels need it
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig")


def read_textgrid(path: PathLike, tier: str = "phones", silence_label: str = "sil") -> List[Segment]:
    """Intervals of one tier of a Praat TextGrid (long or short text format).

    Args:
        path: the `.TextGrid` file.
        tier: name of the interval tier to read (MFA writes `words` and `phones`).
        silence_label: label given to intervals whose text is empty (MFA leaves silences empty),
            so that silences stay tokens of their own and durations still cover the whole clip.

    Returns:
        `[(label, start_s, end_s), ...]` in time order.

    Raises:
        TextGridError: if the file is not a TextGrid, or has no interval tier named `tier`
            (the message lists the tiers it has).
    """
    text = _read_text(path)
    tokens = []
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            tokens.append(match.group(1).replace('""', '"'))
        elif match.group(2) is not None:
            tokens.append(float(match.group(2)))
    if tokens[:2] != ["ooTextFile", "TextGrid"]:
        raise TextGridError(f"{os.fspath(path)!r} is not a Praat TextGrid in text format.")
    # Header: "ooTextFile" "TextGrid" xmin xmax size (the `<exists>` flag is skipped), then each tier.
    position, names = 5, []
    num_tiers = int(tokens[4]) if len(tokens) > 4 else 0
    for _ in range(num_tiers):
        tier_class, name, _xmin, _xmax, size = tokens[position : position + 5]
        position += 5
        names.append(name)
        fields = 3 if tier_class == "IntervalTier" else 2  # TextTier points are (time, mark)
        items = tokens[position : position + fields * int(size)]
        position += fields * int(size)
        if name == tier and tier_class == "IntervalTier":
            return [
                (label.strip() or silence_label, float(start), float(end))
                for start, end, label in zip(items[0::3], items[1::3], items[2::3])
            ]
    raise TextGridError(f"{os.fspath(path)!r} has no interval tier {tier!r}; its tiers are {names}.")


def read_alignment_json(path: PathLike) -> List[Segment]:
    """Segments of a corpus alignment file `{"segments": [[phone, start_s, end_s], ...]}`."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if "segments" not in data:
        raise TextGridError(f"{os.fspath(path)!r} has no 'segments' list.")
    return [(str(label), float(start), float(end)) for label, start, end in data["segments"]]


def durations_from_segments(
    segments: Sequence[Segment],
    hop_length: int,
    sampling_rate: int,
    num_frames: int,
    tolerance_s: float = 0.05,
) -> List[int]:
    """Frames per segment, summing exactly to `num_frames`.

    Each segment end is rounded to the nearest frame boundary (cumulative rounding: rounding the
    boundaries, not the lengths, so errors never accumulate); the first segment starts at frame
    0 and the last one ends at `num_frames`, absorbing the codec's right padding. A segment
    shorter than a frame can get 0 frames.

    Args:
        segments: `[(label, start_s, end_s), ...]` covering the clip in time order.
        hop_length, sampling_rate: the codec's (a frame lasts `hop_length / sampling_rate` s).
        num_frames: the clip's frame count, `ceil(samples / hop_length)`.
        tolerance_s: largest accepted gap between the last segment's end and the clip's end.

    Raises:
        ValueError: for no segments, times that go backwards, or segments that end more than
            `tolerance_s` away from the clip's end (they belong to other audio).
    """
    if not segments:
        raise ValueError("no segments to convert to durations.")
    ends = np.array([end for _, _, end in segments], dtype=np.float64)
    if np.any(np.diff(ends) < 0):
        raise ValueError("segment end times must not decrease.")
    frame_s = hop_length / sampling_rate
    clip_end_s = num_frames * frame_s
    if abs(ends[-1] - clip_end_s) > tolerance_s + frame_s:
        raise ValueError(
            f"segments end at {ends[-1]:.3f} s but the clip has {num_frames} frames ({clip_end_s:.3f} s); "
            "they do not belong to this audio."
        )
    boundaries = np.clip(np.floor(ends / frame_s + 0.5).astype(np.int64), 0, num_frames)
    boundaries[-1] = num_frames
    return np.diff(boundaries, prepend=0).tolist()


def boundary_errors(predicted: Sequence[int], reference: Sequence[int]) -> np.ndarray:
    """Absolute distance in frames between corresponding inner token boundaries.

    Args:
        predicted, reference: durations of the same tokens (same length and sum).

    Returns:
        `(tokens - 1,)` int array `|cumsum(predicted) - cumsum(reference)|` at each boundary
        between consecutive tokens.
    """
    predicted, reference = np.asarray(predicted), np.asarray(reference)
    if predicted.shape != reference.shape or predicted.sum() != reference.sum():
        raise ValueError(
            f"durations differ in token count or total frames: {predicted.shape}/{predicted.sum()} "
            f"vs {reference.shape}/{reference.sum()}."
        )
    return np.abs(np.cumsum(predicted)[:-1] - np.cumsum(reference)[:-1])
