"""The NaturalSpeech 2 neural audio codec (config, model, RVQ, feature extractor, discriminators, losses).

Importing this module registers the codec with transformers' Auto classes (`AutoConfig`, `AutoModel`,
`AutoFeatureExtractor`), so `AutoModel.from_pretrained(path)` loads a saved `NS2CodecModel`.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from .configuration_codec import NS2CodecConfig
from .discriminators import (
    NS2CodecDiscriminator,
    NS2MultiPeriodDiscriminator,
    NS2MultiScaleSTFTDiscriminator,
)
from .feature_extraction_codec import NS2CodecFeatureExtractor
from .losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    multi_resolution_mel_loss,
    phase_loss,
    si_snr,
)
from .modeling_codec import NS2CodecDecoderOutput, NS2CodecEncoderOutput, NS2CodecModel, NS2CodecOutput
from .quantizer import NS2QuantizerOutput, NS2ResidualVectorQuantizer
from .resynthesis import resynthesize


def _register_auto_classes() -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if NS2CodecConfig.model_type in CONFIG_MAPPING:  # already registered (module re-imported)
        return
    AutoConfig.register(NS2CodecConfig.model_type, NS2CodecConfig)
    AutoModel.register(NS2CodecConfig, NS2CodecModel)
    AutoFeatureExtractor.register(NS2CodecConfig, NS2CodecFeatureExtractor)


_register_auto_classes()

__all__ = [
    "NS2CodecConfig",
    "NS2CodecDecoderOutput",
    "NS2CodecDiscriminator",
    "NS2CodecEncoderOutput",
    "NS2CodecFeatureExtractor",
    "NS2CodecModel",
    "NS2CodecOutput",
    "NS2MultiPeriodDiscriminator",
    "NS2MultiScaleSTFTDiscriminator",
    "NS2QuantizerOutput",
    "NS2ResidualVectorQuantizer",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
    "multi_resolution_mel_loss",
    "phase_loss",
    "resynthesize",
    "si_snr",
]
