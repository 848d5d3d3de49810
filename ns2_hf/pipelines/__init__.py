from .pipeline_ns2 import DEFAULT_MODEL, NS2Pipeline, NS2PipelineOutput, build_untrained_pipeline, register_with_diffusers
from .voice import NS2Voice, VoiceError

__all__ = [
    "DEFAULT_MODEL",
    "NS2Pipeline",
    "NS2PipelineOutput",
    "NS2Voice",
    "VoiceError",
    "build_untrained_pipeline",
    "register_with_diffusers",
]
