"""ns2-hf: NaturalSpeech 2 zero-shot text-to-speech for the Hugging Face ecosystem.

    from ns2_hf import NS2Pipeline
    pipe = NS2Pipeline.from_pretrained()          # the small model that ships with the repository
    speech = pipe("Hello there.", prompt_audio="examples/prompt.wav").audios[0]

The names below are imported on first use (`ns2_hf.lazy`), so `import ns2_hf` loads no torch. A model's
subpackage registers its classes with transformers' Auto* factories when it is imported, and importing
`NS2Pipeline` (e.g. `from ns2_hf import NS2Pipeline`) registers it with diffusers, so that
`diffusers.DiffusionPipeline.from_pretrained(folder)` loads an NS2 pipeline folder.
"""

from typing import TYPE_CHECKING

from .lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "AudioInputError": ".audio.io",
    "GenerationArgumentError": ".pipelines.arguments",
    "LongFormOutput": ".pipelines.long_form",
    "ModelLoadError": ".pipelines.loading",
    "NS2AlignerConfig": ".alignment",
    "NS2AlignerModel": ".alignment",
    "NS2CodecConfig": ".codec",
    "NS2CodecFeatureExtractor": ".codec",
    "NS2CodecModel": ".codec",
    "NS2Config": ".ns2",
    "NS2DPMSolverMultistepScheduler": ".schedulers",
    "NS2Model": ".ns2",
    "NS2PhonemeTokenizer": ".text.tokenization_ns2",
    "NS2Pipeline": ".pipelines.pipeline_ns2",
    "NS2PipelineOutput": ".pipelines.pipeline_ns2",
    "NS2Scheduler": ".schedulers",
    "NS2SpeechEnhancementPipeline": ".pipelines.pipeline_ns2_speech_enhancement",
    "NS2Voice": ".pipelines.voice",
    "NS2VoiceConversionPipeline": ".pipelines.pipeline_ns2_voice_conversion",
    "NS2VoiceConversionPipelineOutput": ".pipelines.pipeline_ns2_voice_conversion",
    "OutputPathError": ".audio.output",
    "ThreadSettingError": ".threads",
    "VoiceError": ".pipelines.voice",
    "build_untrained_pipeline": ".pipelines.pipeline_ns2",
    "speak_long_text": ".pipelines.long_form",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what static tools and IDEs see
    from .alignment import NS2AlignerConfig, NS2AlignerModel
    from .audio.io import AudioInputError
    from .audio.output import OutputPathError
    from .codec import NS2CodecConfig, NS2CodecFeatureExtractor, NS2CodecModel
    from .ns2 import NS2Config, NS2Model
    from .pipelines.arguments import GenerationArgumentError
    from .pipelines.loading import ModelLoadError
    from .pipelines.long_form import LongFormOutput, speak_long_text
    from .pipelines.pipeline_ns2 import NS2Pipeline, NS2PipelineOutput, build_untrained_pipeline
    from .pipelines.pipeline_ns2_speech_enhancement import NS2SpeechEnhancementPipeline
    from .pipelines.pipeline_ns2_voice_conversion import NS2VoiceConversionPipeline, NS2VoiceConversionPipelineOutput
    from .pipelines.voice import NS2Voice, VoiceError
    from .schedulers import NS2DPMSolverMultistepScheduler, NS2Scheduler
    from .text.tokenization_ns2 import NS2PhonemeTokenizer
    from .threads import ThreadSettingError
