from .arguments import GenerationArgumentError
from .loading import ModelLoadError
from .pipeline_ns2 import DEFAULT_MODEL, NS2Pipeline, NS2PipelineOutput, build_untrained_pipeline, register_with_diffusers
from .pipeline_ns2_speech_enhancement import NS2SpeechEnhancementPipeline
from .pipeline_ns2_voice_conversion import NS2VoiceConversionPipeline, NS2VoiceConversionPipelineOutput
from .voice import NS2Voice, VoiceError

__all__ = [
    "DEFAULT_MODEL",
    "GenerationArgumentError",
    "ModelLoadError",
    "NS2Pipeline",
    "NS2PipelineOutput",
    "NS2SpeechEnhancementPipeline",
    "NS2Voice",
    "NS2VoiceConversionPipeline",
    "NS2VoiceConversionPipelineOutput",
    "VoiceError",
    "build_untrained_pipeline",
    "register_with_diffusers",
]
