from .arguments import GenerationArgumentError
from .loading import ModelLoadError
from .pipeline_ns2 import DEFAULT_MODEL, NS2Pipeline, NS2PipelineOutput, build_untrained_pipeline
from .pipeline_ns2_speech_enhancement import NS2SpeechEnhancementPipeline
from .pipeline_ns2_voice_conversion import NS2VoiceConversionPipeline, NS2VoiceConversionPipelineOutput

__all__ = [
    "DEFAULT_MODEL",
    "GenerationArgumentError",
    "ModelLoadError",
    "NS2Pipeline",
    "NS2PipelineOutput",
    "NS2SpeechEnhancementPipeline",
    "NS2VoiceConversionPipeline",
    "NS2VoiceConversionPipelineOutput",
    "build_untrained_pipeline",
]
