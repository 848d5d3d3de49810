"""Codecs other than ns2-hf's own as NaturalSpeech 2 latent spaces: transformers' DAC, EnCodec and Mimi.

`latent_codec.py` states what NS2 needs of a codec (`NS2CodecModel` has it natively) and holds the adapters' shared
base; `dac.py`, `encodec.py` and `mimi.py` are one thin adapter each over the transformers class. Load any of them
(or an `NS2CodecModel` folder) with `ns2_hf.pipelines.loading.load_latent_codec`. Importing this module registers
the adapters with transformers' `AutoConfig` and `AutoModel`.
"""

from transformers import AutoConfig, AutoModel

from .dac import NS2DacCodecConfig, NS2DacCodecModel
from .encodec import NS2EncodecCodecConfig, NS2EncodecCodecModel
from .latent_codec import (
    NS2LatentCodec,
    NS2LatentCodecDecoderOutput,
    NS2LatentCodecEncoderOutput,
    NS2TransformersCodecConfig,
    NS2TransformersCodecModel,
    check_codec_latent_space,
    codec_latent_space,
)
from .mimi import NS2MimiCodecConfig, NS2MimiCodecModel

#: The adapter of each supported transformers codec, by the codec config's `model_type`.
ADAPTERS = {"dac": NS2DacCodecModel, "encodec": NS2EncodecCodecModel, "mimi": NS2MimiCodecModel}


def _register_auto_classes() -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    for adapter in ADAPTERS.values():
        if adapter.config_class.model_type not in CONFIG_MAPPING:  # not yet (the module may be re-imported)
            AutoConfig.register(adapter.config_class.model_type, adapter.config_class)
            AutoModel.register(adapter.config_class, adapter)


_register_auto_classes()

__all__ = [
    "ADAPTERS",
    "NS2DacCodecConfig",
    "NS2DacCodecModel",
    "NS2EncodecCodecConfig",
    "NS2EncodecCodecModel",
    "NS2LatentCodec",
    "NS2LatentCodecDecoderOutput",
    "NS2LatentCodecEncoderOutput",
    "NS2MimiCodecConfig",
    "NS2MimiCodecModel",
    "NS2TransformersCodecConfig",
    "NS2TransformersCodecModel",
    "check_codec_latent_space",
    "codec_latent_space",
]
