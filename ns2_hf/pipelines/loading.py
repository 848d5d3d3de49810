"""Finding and checking trained weights before and after they are loaded.

A model folder that loads "fine" but holds garbage speaks garbage with no error, so every load of
ns2-hf weights goes through these checks and fails with a :class:`ModelLoadError` that names the file:

* the name is an existing folder, a shipped model, or a Hub repo id that can be fetched (Hub downloads
  take only the files a pipeline reads: JSON configs and safetensors);
* model weights are safetensors only (a pickle file such as `pytorch_model.bin` can run code when
  loaded, so it is refused, never opened), and each file's header is readable and covers the file
  (a truncated or overwritten file is caught here);
* after loading, the model's state dict has exactly the keys of its files (no weight left at its random
  initial value, none ignored) and every tensor is finite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Type, Union

if TYPE_CHECKING:
    import torch


#: Weight files ns2-hf loads, and the files a pipeline folder needs besides them (Hub download filter).
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PIPELINE_FILE_PATTERNS = ["model_index.json", "*/*.json", "*/*.safetensors"]
#: Weight formats that are pickles: never opened.
PICKLE_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class ModelLoadError(OSError):
    """Raised when a model cannot be found or its files cannot be trusted: missing folder, unknown name,
    pickle weights, truncated/corrupt safetensors, missing or unexpected keys, non-finite values."""


def find_pipeline_folder(name: Union[str, os.PathLike], shipped_dirs: Sequence[Path], **hub_kwargs) -> str:
    """The local folder of a pipeline given by a folder path, a shipped model's short name (a folder in one of
    `shipped_dirs`, the first that has it) or a Hub repo id (fetched with `huggingface_hub.snapshot_download`, only
    `PIPELINE_FILE_PATTERNS`; `hub_kwargs`: revision, cache_dir, token, local_files_only).

    Raises:
        ModelLoadError: the name is none of the three.
    """
    name = os.fspath(name)
    if os.path.isdir(name):
        return name
    for shipped_dir in shipped_dirs:
        if (shipped_dir / name).is_dir():
            return str(shipped_dir / name)
    shipped = ", ".join(sorted({path.name for folder in shipped_dirs if folder.is_dir() for path in folder.iterdir()
                                if path.is_dir()})) or "none"
    not_found = f"model {name!r} not found: there is no such folder, it is not a shipped model ({shipped})"
    if os.path.exists(name):
        raise ModelLoadError(f"model {name!r} is a file, not a pipeline folder (one written by `save_pretrained`).")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelLoadError(f"{not_found}, and not a valid Hub repo id.") from None
    try:
        return snapshot_download(name, allow_patterns=PIPELINE_FILE_PATTERNS, **hub_kwargs)
    except (OSError, ValueError) as error:  # not cached offline, unknown repo, no network, refused token
        reason = " ".join(str(error).split())  # the Hub's messages span lines; ours is one
        raise ModelLoadError(f"{not_found}, and the Hub repo id could not be fetched ({type(error).__name__}: {reason}).") from error


def weight_files(folder: Union[str, os.PathLike]) -> List[Path]:
    """The safetensors files of one model folder (one file, or the shards its index lists).

    Raises:
        ModelLoadError: no safetensors weights (naming a pickle file found instead), or a file whose header
            cannot be read or does not cover the file (truncated, overwritten).
    """
    from safetensors import SafetensorError, safe_open

    folder = Path(folder)
    if (folder / SAFETENSORS_INDEX_FILE).is_file():
        try:
            shards = sorted(set(json.loads((folder / SAFETENSORS_INDEX_FILE).read_text())["weight_map"].values()))
        except (ValueError, KeyError, AttributeError) as error:
            raise ModelLoadError(f"{folder / SAFETENSORS_INDEX_FILE} is not a safetensors index ({error}).") from error
        files = [folder / shard for shard in shards]
    else:
        files = [folder / SAFETENSORS_FILE]
    for path in files:
        if not path.is_file():
            pickles = sorted(p.name for p in folder.glob("*") if p.suffix in PICKLE_WEIGHT_SUFFIXES)
            found = f"; it holds {', '.join(pickles)}, a pickle format ns2-hf never loads (it can run code)" if pickles else ""
            raise ModelLoadError(
                f"no safetensors weights at {path}{found}. Save the model with `save_pretrained` "
                "(safetensors is the default), or convert a checkpoint you trust with `safetensors.torch.save_file`."
            )
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            raise ModelLoadError(f"{path} is not a readable safetensors file, truncated or corrupt ({error}).") from error
    return files


def check_loaded_weights(model: torch.nn.Module, folder: Union[str, os.PathLike]) -> None:
    """Checks a model loaded from `folder`: its state dict has exactly the keys of the folder's safetensors
    files, and every value is finite.

    Raises:
        ModelLoadError: naming the file and the first missing, unexpected or non-finite tensors.
    """
    import torch
    from safetensors import safe_open
    from transformers import PreTrainedModel
    from transformers.core_model_loading import revert_weight_conversion

    file_of: Dict[str, Path] = {}
    for path in weight_files(folder):
        with safe_open(str(path), framework="pt") as handle:
            file_of.update(dict.fromkeys(handle.keys(), path))
    state = model.state_dict()
    if isinstance(model, PreTrainedModel):  # the keys as `save_pretrained` writes them (e.g. Mimi's are renamed)
        state = revert_weight_conversion(model, state)
    missing, unexpected = sorted(set(state) - set(file_of)), sorted(set(file_of) - set(state))
    if missing or unexpected:
        files = ", ".join(sorted({str(path) for path in file_of.values()}))
        raise ModelLoadError(
            f"{files} does not match {type(model).__name__}: "
            f"{len(missing)} missing weight(s) {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]} "
            "(the file was written by another model or another configuration)."
        )
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            count = int((~torch.isfinite(value)).sum())
            raise ModelLoadError(
                f"{file_of[key]} is corrupt: tensor {key!r} holds {count} NaN or infinite value(s) of {value.numel()}."
            )


def check_pipeline_folder(folder: Union[str, os.PathLike]) -> None:
    """Before loading: `folder` is a pipeline folder (`model_index.json`) whose model components (the
    sub-folders with a `config.json`) hold readable safetensors weights (see :func:`weight_files`)."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(f"{folder} is not a pipeline folder: it has no model_index.json (write one with `save_pretrained`).")
    for component in sorted(folder.iterdir()):
        if (component / "config.json").is_file():
            weight_files(component)


def check_pipeline_weights(pipeline, folder: Union[str, os.PathLike]) -> None:
    """After loading: every `torch.nn.Module` component of `pipeline` matches its files in `folder`."""
    import torch

    for name, component in pipeline.components.items():
        if isinstance(component, torch.nn.Module):
            check_loaded_weights(component, Path(folder) / name)


def load_model(model_class: Type, folder: Union[str, os.PathLike], **kwargs):
    """`model_class.from_pretrained(folder)` (a transformers model) with the checks above before and after.

    Raises:
        ModelLoadError: a missing folder, or weights that fail a check.
    """
    if not Path(folder).is_dir():
        raise ModelLoadError(f"model folder {os.fspath(folder)!r} does not exist.")
    weight_files(folder)
    model = model_class.from_pretrained(folder, use_safetensors=True, **kwargs)
    check_loaded_weights(model, folder)
    return model


def hub_download_options(kwargs: dict) -> Dict[str, Optional[object]]:
    """Takes the Hub download options out of `from_pretrained` keyword arguments."""
    return {key: kwargs.pop(key) for key in ("revision", "cache_dir", "token", "local_files_only") if key in kwargs}


def load_latent_codec_config(name_or_path: Union[str, os.PathLike], num_quantizers: Optional[int] = None):
    """The config of the codec `load_latent_codec` would load — its sampling rate, hop, latent dim and codebooks —
    without its weights.

    Args:
        name_or_path: an `NS2CodecModel` folder, a saved adapter folder (`NS2DacCodecModel`, ...), or a transformers
            DAC / EnCodec / Mimi checkpoint (a Hub id such as `descript/dac_16khz`, or its local folder).
        num_quantizers: for a transformers checkpoint, how many of its codebooks make the latent (default all).

    Raises:
        ModelLoadError: the config is of no supported codec, or `num_quantizers` is given for a folder that fixed it.
    """
    from transformers import AutoConfig

    from ..codec import NS2CodecConfig
    from ..latent_codecs import ADAPTERS, NS2TransformersCodecConfig

    config = AutoConfig.from_pretrained(name_or_path)
    if config.model_type in ADAPTERS:
        return ADAPTERS[config.model_type].config_class(codec_config=config, num_quantizers=num_quantizers,
                                                        source=os.fspath(name_or_path))
    if not isinstance(config, (NS2CodecConfig, NS2TransformersCodecConfig)):
        raise ModelLoadError(f"{os.fspath(name_or_path)} holds a {config.model_type!r} model, not a codec ns2-hf "
                             f"supports (ns2_codec, or transformers' {', '.join(ADAPTERS)}).")
    if num_quantizers is not None and num_quantizers != config.num_quantizers:
        raise ModelLoadError(f"{os.fspath(name_or_path)} is a codec with {config.num_quantizers} quantizers; "
                             f"`num_quantizers` {num_quantizers} is chosen only when wrapping a transformers codec.")
    return config


def load_latent_codec(name_or_path: Union[str, os.PathLike], num_quantizers: Optional[int] = None):
    """Any supported codec as an NS2 latent space (`ns2_hf.latent_codecs`), in eval mode: an `NS2CodecModel` or a
    saved adapter folder (through `load_model`'s checks), or a transformers DAC / EnCodec / Mimi checkpoint wrapped
    in its adapter. Arguments as in `load_latent_codec_config`."""
    from transformers import AutoConfig

    from ..codec import NS2CodecConfig, NS2CodecModel
    from ..latent_codecs import ADAPTERS, NS2TransformersCodecConfig

    config = load_latent_codec_config(name_or_path, num_quantizers)
    if isinstance(config, NS2CodecConfig):
        return load_model(NS2CodecModel, name_or_path).eval()
    adapter = ADAPTERS[config.codec_config.model_type]
    if isinstance(AutoConfig.from_pretrained(name_or_path), NS2TransformersCodecConfig):  # a saved adapter folder
        return load_model(adapter, name_or_path).eval()
    codec = adapter.codec_class.from_pretrained(name_or_path)  # a transformers checkpoint: wrap it
    return adapter.from_codec(codec, num_quantizers, source=os.fspath(name_or_path))
