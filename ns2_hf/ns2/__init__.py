"""The NaturalSpeech 2 latent diffusion model (phoneme and prompt encoders, duration and pitch
predictors, WaveNet denoiser), its losses and the training speech prompter."""

from transformers import AutoConfig, AutoModel

from ..text import register_auto_tokenizer

from .configuration_ns2 import NS2Config
from .modeling_ns2 import NS2Model, NS2ModelOutput, NS2PreTrainedModel
from .prompting import NS2SpeechPrompter, UtteranceTooShortError

AutoConfig.register("ns2", NS2Config)
AutoModel.register(NS2Config, NS2Model)
register_auto_tokenizer(NS2Config)  # AutoTokenizer.from_pretrained(ns2 folder) → NS2PhonemeTokenizer

__all__ = [
    "NS2Config",
    "NS2Model",
    "NS2ModelOutput",
    "NS2PreTrainedModel",
    "NS2SpeechPrompter",
    "UtteranceTooShortError",
]
