"""What the `evaluate` modules of this package share: their `MetricInfo` for waveform inputs and
the averaging of per-utterance results."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def audio_metric_info(description: str, citation: str, inputs_description: str, with_references: bool = True):
    """`evaluate.MetricInfo` whose `predictions` (and `references`) are `(samples,)` float waveforms."""
    import datasets
    import evaluate

    waveform = datasets.Sequence(datasets.Value("float32"))
    features = {"predictions": waveform, "references": waveform} if with_references else {"predictions": waveform}
    return evaluate.MetricInfo(
        description=description, citation=citation, inputs_description=inputs_description, features=datasets.Features(features)
    )


def mean_of_rows(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Mean of each key of per-utterance result dicts, NaN values skipped."""
    return {key: float(np.nanmean([row[key] for row in rows])) for key in rows[0]}
