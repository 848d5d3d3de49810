"""ns2-hf: NaturalSpeech 2 zero-shot text-to-speech for the Hugging Face ecosystem.

    from ns2_hf import NS2Pipeline
    pipe = NS2Pipeline.from_pretrained()          # the small model that ships with the repository
    speech = pipe("Hello there.", prompt_audio="examples/prompt.wav").audios[0]

Importing the package registers its classes with transformers' Auto* factories, and `NS2Pipeline` with
diffusers, so `diffusers.DiffusionPipeline.from_pretrained(folder)` loads an NS2 pipeline folder.
"""

from .alignment import NS2AlignerConfig, NS2AlignerModel
from .audio import AudioInputError
from .audio.output import OutputPathError
from .codec import NS2CodecConfig, NS2CodecFeatureExtractor, NS2CodecModel
from .ns2 import NS2Config, NS2Model
from .pipelines import (
    GenerationArgumentError,
    ModelLoadError,
    NS2Pipeline,
    NS2PipelineOutput,
    NS2SpeechEnhancementPipeline,
    NS2Voice,
    NS2VoiceConversionPipeline,
    NS2VoiceConversionPipelineOutput,
    VoiceError,
    build_untrained_pipeline,
    register_with_diffusers,
)
from .schedulers import NS2DPMSolverMultistepScheduler, NS2Scheduler
from .text import NS2PhonemeTokenizer, register_auto_tokenizer

register_auto_tokenizer(NS2Config)
register_with_diffusers()

__version__ = "0.1.0"

__all__ = [
    "AudioInputError",
    "GenerationArgumentError",
    "ModelLoadError",
    "NS2AlignerConfig",
    "NS2AlignerModel",
    "NS2CodecConfig",
    "NS2CodecFeatureExtractor",
    "NS2CodecModel",
    "NS2Config",
    "NS2DPMSolverMultistepScheduler",
    "NS2Model",
    "NS2PhonemeTokenizer",
    "NS2Pipeline",
    "NS2PipelineOutput",
    "NS2Scheduler",
    "OutputPathError",
    "NS2SpeechEnhancementPipeline",
    "NS2VoiceConversionPipeline",
    "NS2VoiceConversionPipelineOutput",
    "NS2Voice",
    "VoiceError",
    "build_untrained_pipeline",
]
