"""The inference pipeline, its argument checks and model loading, and long-form speech; each name is
imported on first use (`ns2_hf.lazy`), so the argument checks load no torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_MODEL": ".pipeline_ns2",
    "GenerationArgumentError": ".arguments",
    "LongFormOutput": ".long_form",
    "ModelLoadError": ".loading",
    "NS2Pipeline": ".pipeline_ns2",
    "NS2PipelineOutput": ".pipeline_ns2",
    "build_untrained_pipeline": ".pipeline_ns2",
    "speak_long_text": ".long_form",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
