"""The inference pipelines (text-to-speech, voice conversion, speech enhancement), saved voices, their argument
checks and model loading, and long-form speech; each name is imported on first use (`ns2_hf.lazy`), so the
argument checks load no torch."""

from ..lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_MODEL": ".pipeline_ns2",
    "GenerationArgumentError": ".arguments",
    "LongFormOutput": ".long_form",
    "ModelLoadError": ".loading",
    "NS2Pipeline": ".pipeline_ns2",
    "NS2PipelineOutput": ".pipeline_ns2",
    "NS2SpeechEnhancementPipeline": ".pipeline_ns2_speech_enhancement",
    "NS2Voice": ".voice",
    "NS2VoiceConversionPipeline": ".pipeline_ns2_voice_conversion",
    "NS2VoiceConversionPipelineOutput": ".pipeline_ns2_voice_conversion",
    "VoiceError": ".voice",
    "build_untrained_pipeline": ".pipeline_ns2",
    "register_with_diffusers": ".pipeline_ns2",
    "speak_long_text": ".long_form",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
