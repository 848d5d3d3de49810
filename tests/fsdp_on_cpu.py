"""Runs a training script under FSDP on CPU processes (gloo), for tests: accelerate enables FSDP on GPUs only, so this
launcher reads an accelerate config's `fsdp_config` (as `accelerate launch` would, into `FSDP_*` variables) and
turns the CPU run's state into an FSDP one after accelerate has built it. Everything else — FSDP2 sharding,
`accelerator.prepare`, `save_state`/`load_state`, `get_state_dict` — is accelerate's and torch's own code.

    ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 tests/fsdp_on_cpu.py ACCELERATE_CONFIG SCRIPT [ARGS...]
"""

import os
import runpy
import sys

import yaml
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

#: accelerate config keys whose environment variable is not FSDP_ + the key without its `fsdp_` prefix
RENAMED = {"fsdp_transformer_layer_cls_to_wrap": "FSDP_TRANSFORMER_CLS_TO_WRAP"}


def fsdp_environment(config_file: str) -> dict:
    """The `FSDP_*` variables `accelerate launch` derives from the config file's `fsdp_config`."""
    with open(config_file) as handle:
        config = yaml.safe_load(handle)["fsdp_config"]
    environment = {"ACCELERATE_USE_FSDP": "true"}
    for key, value in config.items():
        name = RENAMED.get(key, "FSDP_" + key[len("fsdp_"):].upper())
        environment[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return environment


def state_init_with_fsdp_on_cpu(original):
    def init(self, *args, fsdp_plugin=None, **kwargs):
        original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            PartialState().distributed_type = self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
    return init


if __name__ == "__main__":
    config_file, script, *arguments = sys.argv[1:]
    os.environ.update(fsdp_environment(config_file))
    AcceleratorState.__init__ = state_init_with_fsdp_on_cpu(AcceleratorState.__init__)
    sys.argv = [script, *arguments]
    runpy.run_path(script, run_name="__main__")
