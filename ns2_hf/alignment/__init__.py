"""Phoneme durations in codec frames: the built-in aligner, monotonic alignment search and
import of reference timings (MFA TextGrids, the corpus's festival alignments) onto the front end's phones."""

from .configuration_aligner import NS2AlignerConfig
from .modeling_aligner import NS2AlignerModel, NS2AlignerOutput, NS2AlignerPreTrainedModel
from .monotonic_align import AlignmentError, durations_from_alignment, maximum_path, monotonic_alignment_search
from .phone_mapping import PhoneMappingError, durations_on_tokens
from .textgrid import (
    TextGridError,
    boundary_errors,
    durations_from_segments,
    read_alignment_json,
    read_textgrid,
)

__all__ = [
    "AlignmentError",
    "NS2AlignerConfig",
    "NS2AlignerModel",
    "NS2AlignerOutput",
    "NS2AlignerPreTrainedModel",
    "PhoneMappingError",
    "TextGridError",
    "boundary_errors",
    "durations_from_alignment",
    "durations_from_segments",
    "durations_on_tokens",
    "maximum_path",
    "monotonic_alignment_search",
    "read_alignment_json",
    "read_textgrid",
]


def _register() -> None:
    from transformers import AutoConfig, AutoModel

    try:
        AutoConfig.register(NS2AlignerConfig.model_type, NS2AlignerConfig)
        AutoModel.register(NS2AlignerConfig, NS2AlignerModel)
    except ValueError:  # already registered (module re-imported)
        pass


_register()
