from .arguments import GenerationArgumentError
from .loading import ModelLoadError
from .pipeline_ns2 import DEFAULT_MODEL, NS2Pipeline, NS2PipelineOutput, build_untrained_pipeline

__all__ = [
    "DEFAULT_MODEL",
    "GenerationArgumentError",
    "ModelLoadError",
    "NS2Pipeline",
    "NS2PipelineOutput",
    "build_untrained_pipeline",
]
