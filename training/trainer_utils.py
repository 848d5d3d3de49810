"""What `train_codec.py` and `train_ns2.py` share: the recipe (YAML + `--key value` overrides),
the run folder (never reused without `--resume`), step-seeded randomness, checkpoints with rotation and
resume, the best-model folder, and the TensorBoard pictures.

EMA weights come from `diffusers.training_utils.EMAModel`, the learning rate schedules from
`transformers.get_scheduler`. A checkpoint holds no pickle that is loaded with code execution allowed:
`accelerator.save_state` writes the model as safetensors and the optimizer, schedule and RNG states as
torch files that accelerate loads with `weights_only=True`; the EMA weights go to `ema.safetensors` and
the counters (step, best validation loss, EMA settings, the learning-rate schedule) to
`training_state.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import yaml

CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
RECIPE_FILE = "recipe.yaml"
EMA_FILE = "ema.safetensors"
TRAINING_STATE_FILE = "training_state.json"
OLD_LAYOUT_DIR = "old_layout"  # a checkpoint's files from before TRAINING_STATE_FILE (upgrade_old_checkpoint)
#: Written into `best/`: the step and validation loss of the model there.
BEST_RECORD_FILE = "validation.json"
#: Recipe keys that shape the learning-rate schedule; a resumed run keeps its own unless `--reschedule`.
SCHEDULE_KEYS = ("lr", "discriminator_lr", "lr_schedule", "warmup_steps", "max_steps")


# ---------------------------------------------------------------------------------------------
# Recipe: a YAML file of plain data, any key overridable from the command line
# ---------------------------------------------------------------------------------------------
class RecipeError(ValueError):
    """A recipe file or a `--key value` override is wrong (unknown key, missing value)."""


def apply_overrides(recipe: Dict[str, Any], overrides: List[str]) -> Dict[str, Any]:
    """Returns a copy of `recipe` with `--key value` pairs applied.

    Values are parsed by `parse_value` (`--lr 1e-3` is a float, `--model.preset base` a string, `--latent_scale auto`
    a string, `--max_minutes null` None). Dotted keys reach into nested dicts (`--model.hidden_size 64`);
    a key must already exist in the recipe (catches typos), except inside the `model` dict, whose fields
    are the model config's.
    """
    recipe = yaml.safe_load(yaml.safe_dump(recipe))  # deep copy of plain data
    if len(overrides) % 2:
        raise RecipeError(f"overrides must be `--key value` pairs, got {overrides}")
    for flag, text in zip(overrides[::2], overrides[1::2]):
        if not flag.startswith("--"):
            raise RecipeError(f"expected `--key`, got {flag!r} (overrides must be `--key value` pairs)")
        path = flag[2:].replace("-", "_").split(".")
        node = recipe
        for depth, key in enumerate(path[:-1]):
            if not isinstance(node.get(key), dict):
                raise RecipeError(f"--{'.'.join(path)}: {'.'.join(path[: depth + 1])} is not a section of the recipe")
            node = node[key]
        if path[-1] not in node and path[0] != "model":
            raise RecipeError(f"--{'.'.join(path)}: unknown recipe key (known: {', '.join(sorted(node))})")
        value = parse_value(text)
        if isinstance(value, bool) and isinstance(node.get(path[-1]), str):  # `--mixed_precision no`: the mode "no",
            value = text                                                    # not YAML 1.1's false
        node[path[-1]] = value
    return recipe


def parse_value(text: str) -> Any:
    """A command-line value as YAML, plus the float spellings YAML 1.1 leaves as strings (`3e-4`)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def parse_recipe(description: str, add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None):
    """Command line of a training script: `--config RECIPE.yaml --dataset DIR --output_dir DIR [--resume]`,
    the script's own arguments (`add_arguments`), then any `--key value` recipe overrides.

    Returns:
        `(recipe dict, argparse namespace)`.
    """
    parser = argparse.ArgumentParser(
        description=description,
        epilog="Any other `--key value` pair overrides that key of the recipe (dotted keys for nested ones, "
        "e.g. `--lr 1e-3 --max_steps 500 --model.preset base`).",
    )
    parser.add_argument("--config", required=True, help="recipe YAML (training/configs/*.yaml)")
    parser.add_argument("--dataset", required=True, help="prepared dataset folder (training/prepare_dataset.py)")
    parser.add_argument("--output_dir", required=True, help="checkpoints, TensorBoard logs and the best model go here")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    parser.add_argument("--reschedule", action="store_true",
                        help="with --resume: rebuild the learning-rate schedule from this command's lr, lr_schedule, "
                        "warmup_steps and max_steps (by default a resumed run keeps its own)")
    if add_arguments is not None:
        add_arguments(parser)
    args, overrides = parser.parse_known_args()
    with open(args.config) as handle:
        recipe = yaml.safe_load(handle)
    if not isinstance(recipe, dict):
        raise RecipeError(f"{args.config} must hold a mapping of recipe keys")
    return apply_overrides(recipe, overrides), args


def save_recipe(recipe: Dict[str, Any], output_dir: Path, step: int = 0) -> None:
    """Writes the resolved recipe (overrides applied) next to the checkpoints, for the record. A resumed run
    (`step` > 0) whose recipe differs keeps the previous one as `recipe.until_step_N.yaml`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RECIPE_FILE
    if step and path.is_file():
        if yaml.safe_load(path.read_text()) == recipe:
            return
        path.rename(output_dir / f"recipe.until_step_{step}.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(recipe, handle, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# The run folder: a new run needs an empty one; --resume needs a checkpoint in it
# ---------------------------------------------------------------------------------------------
class RunFolderError(ValueError):
    """The output folder already holds a run (and `--resume` was not given), or `--resume` finds no checkpoint."""


def check_run_folder(output_dir: Path, resume: bool) -> Optional[Path]:
    """Refuses to start a new run in a folder that is not empty (its recipe, checkpoints, best model and
    TensorBoard curves would be overwritten or mixed with the new run's). Nothing is written here.

    Returns:
        The checkpoint to resume from (`resume`), else None.

    Raises:
        RunFolderError: naming the folder and what to do.
    """
    output_dir = Path(output_dir)
    if resume:
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            raise RunFolderError(f"--resume: no checkpoint in {output_dir / CHECKPOINTS_DIR}")
        return checkpoint
    if output_dir.is_dir() and any(output_dir.iterdir()):
        held = ", ".join(sorted(path.name for path in output_dir.iterdir())[:6])
        raise RunFolderError(
            f"--output_dir {output_dir} is not empty (it holds {held}): pass --resume to continue that run, or "
            "give a new --output_dir. Nothing was changed."
        )
    return None


def start_run(accelerator, recipe: Dict[str, Any], args, output_dir: Path) -> Tuple[Optional[Path], Dict[str, Any]]:
    """The first step of a training script: checks the launch (`check_launch`) and the run folder
    (`check_run_folder`, on every process before any writes; a checkpoint of the old layout is upgraded,
    `upgrade_old_checkpoint`), settles the learning-rate schedule (a resumed
    run keeps its own unless `--reschedule`: `resumed_schedule`) and records the recipe.

    Returns:
        `(checkpoint to resume from or None, schedule settings: lr, lr_schedule, warmup_steps, max_steps...)`.
    """
    output_dir = Path(output_dir)
    check_launch(accelerator)
    checkpoint = check_run_folder(output_dir, args.resume)
    if checkpoint is not None and accelerator.is_main_process:
        upgrade_old_checkpoint(checkpoint)
    accelerator.wait_for_everyone()
    schedule, step = schedule_of(recipe), 0
    if checkpoint is not None:
        progress = read_training_state(checkpoint)["progress"]
        step = progress["step"]
        saved = progress["values"].get("schedule")
        if saved is None:  # a checkpoint written before schedules were recorded: the run's recipe has them
            saved = schedule_of(yaml.safe_load((output_dir / RECIPE_FILE).read_text()))
        schedule = resumed_schedule(recipe, saved, args.reschedule, accelerator.print)
    if accelerator.is_main_process:
        save_recipe(recipe, output_dir, step)
    return checkpoint, schedule


def resume_run(accelerator, checkpoint: Path, ema, progress, output_dir: Path, schedule: Dict[str, Any],
               lr_schedules: Dict[str, Any]) -> None:
    """Loads `checkpoint` (`accelerator.load_state`, whose torch files are read with `weights_only=True`, and
    `load_training_state`), keeps the best model's record (`best_val_loss_on_record`), and sets the
    learning-rate schedule settings (`schedule`, from `start_run`) on the loaded schedules.

    Args:
        lr_schedules: `{lr recipe key: prepared schedule}`, e.g. `{"lr": schedule}`.
    """
    accelerator.load_state(str(checkpoint))
    load_training_state(checkpoint, ema, progress)
    progress.best_val_loss = min(progress.best_val_loss, best_val_loss_on_record(output_dir))
    progress.values["schedule"] = schedule
    for key, prepared in lr_schedules.items():
        lr_schedule = getattr(prepared, "scheduler", prepared)  # accelerate wraps it
        lr_schedule.base_lrs = [schedule[key]] * len(lr_schedule.base_lrs)  # the loaded state holds the old ones
        for group, base_lr, factor in zip(lr_schedule.optimizer.param_groups, lr_schedule.base_lrs, lr_schedule.lr_lambdas):
            group["lr"] = base_lr * factor(lr_schedule.last_epoch)
    accelerator.print(f"resumed from {checkpoint} at step {progress.step}")


def schedule_of(recipe: Dict[str, Any]) -> Dict[str, Any]:
    """The recipe's learning-rate schedule settings (`SCHEDULE_KEYS` it has)."""
    return {key: recipe[key] for key in SCHEDULE_KEYS if key in recipe}


def resumed_schedule(recipe: Dict[str, Any], saved: Dict[str, Any], reschedule: bool, print_fn=print) -> Dict[str, Any]:
    """The schedule settings of a resumed run: the run's own (`saved`, from its checkpoint) unless `reschedule`;
    either way a difference from this command's recipe is said. `max_steps` still decides where training
    stops; in the schedule it is the length the decay was built for."""
    wanted = schedule_of(recipe)
    changed = {key: (saved.get(key), value) for key, value in wanted.items() if saved.get(key) != value}
    if not changed:
        return saved
    listed = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in changed.items())
    if reschedule:
        print_fn(f"resume: --reschedule: the learning-rate schedule is rebuilt ({listed})")
        return wanted
    print_fn(f"resume: keeping the run's learning-rate schedule {saved} (this command asks {listed}; "
             "max_steps only moves where training stops). Pass --reschedule to rebuild the schedule.")
    return saved


def model_config_kwargs(model_recipe: Dict[str, Any]) -> Tuple[Optional[str], Dict[str, Any]]:
    """Splits the recipe's `model` section into its size preset (`"tiny"`, `"base"` or None = the config
    class defaults) and the explicit config fields that override it."""
    fields = dict(model_recipe)
    preset = fields.pop("preset", None)
    if preset not in (None, "tiny", "base"):
        raise RecipeError(f"model.preset must be tiny, base or null, got {preset!r}")
    return preset, fields


def build_config(config_class, model_recipe: Dict[str, Any]):
    """A model config from the recipe's `model` section: `config_class.tiny(**fields)` for preset tiny,
    `config_class(**fields)` otherwise (the defaults are the paper's base sizes)."""
    preset, fields = model_config_kwargs(model_recipe)
    return config_class.tiny(**fields) if preset == "tiny" else config_class(**fields)


# ---------------------------------------------------------------------------------------------
# Progress that must survive a resume
# ---------------------------------------------------------------------------------------------
class TrainingProgress:
    """Step counter, best validation loss and script-specific values (e.g. the NS2 latent scale, the
    learning-rate schedule settings); saved as JSON in each checkpoint (`save_training_state`)."""

    def __init__(self, **values: Any):
        self.step = 0
        self.best_val_loss = float("inf")
        self.values = dict(values)

    def state_dict(self) -> Dict[str, Any]:
        return {"step": self.step, "best_val_loss": self.best_val_loss, "values": dict(self.values)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.best_val_loss = float(state["best_val_loss"])
        self.values = dict(state["values"])


# ---------------------------------------------------------------------------------------------
# Several processes (DDP through accelerate)
# ---------------------------------------------------------------------------------------------
def ddp_kwargs():
    """accelerate's handler for the DDP wrapper of the trained model: no buffer broadcast from rank 0 at each
    forward. The only trained buffers are the codec's RVQ statistics, which the quantizer all-reduces itself
    (`ns2_hf.codec.quantizer`): they are equal on every process, and a broadcast would only copy them again."""
    from accelerate.utils import DistributedDataParallelKwargs

    return DistributedDataParallelKwargs(broadcast_buffers=False)


def build_accelerator(recipe: Dict[str, Any], output_dir: Path):
    """The `Accelerator` of a recipe run (codec and NS2 training): the recipe's gradient accumulation and mixed
    precision, TensorBoard logs in `output_dir`, schedules that count optimizer steps whatever the process
    count, uneven last batches (no item is repeated to even them out) and `ddp_kwargs`."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    return Accelerator(
        gradient_accumulation_steps=recipe["gradient_accumulation_steps"],
        mixed_precision=recipe["mixed_precision"],
        log_with="tensorboard",
        project_dir=str(output_dir),
        step_scheduler_with_optimizer=False,
        dataloader_config=DataLoaderConfiguration(even_batches=False),
        kwargs_handlers=[ddp_kwargs()],
    )


def give_deepspeed_a_micro_batch_size(accelerator) -> None:
    """Under DeepSpeed, sets `train_micro_batch_size_per_gpu` to 1 (a no-op otherwise).

    The loaders use a frame-budget `batch_sampler`, so they have no `batch_size` and accelerate cannot fill
    DeepSpeed's `"auto"` micro-batch size: `prepare()` would refuse. DeepSpeed does not batch the data here
    (accelerate's loaders do); the value only enters the `train_batch_size = micro batch × accumulation ×
    processes` that DeepSpeed checks and logs, so a nominal 1 is right. Call before `accelerator.prepare`."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None:
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1


def uses_fsdp(accelerator) -> bool:
    """True when accelerate shards the parameters themselves (FSDP): they are then `DTensor` shards."""
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.FSDP


def full_tensors(tensors: Iterable) -> List[Any]:
    """The whole tensors of `tensors`: a `DTensor` shard (FSDP) is gathered (`full_tensor()`, a collective: every
    process calls it), any other tensor is returned as it is."""
    from torch.distributed.tensor import DTensor

    return [tensor.full_tensor() if isinstance(tensor, DTensor) else tensor for tensor in tensors]


def placed_like(full, current):
    """`full` (a whole tensor, e.g. read from a checkpoint) placed as `current` is: sharded the same way when
    `current` is a `DTensor` shard (FSDP), else moved to its device."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(current, DTensor):
        return distribute_tensor(full.to(current.device), current.device_mesh, current.placements)
    return full.to(current.device)


def full_model_copy(accelerator, model):
    """The model to evaluate and save: `model` itself, or under FSDP a plain copy of it (its class without the
    FSDP wrapping, its config) holding the gathered full weights on this process — every process calls it, and
    each can then run it alone (validation shares, pictures and `save_pretrained` on process 0) without the
    collectives an FSDP forward needs on all processes at once."""
    if not uses_fsdp(accelerator):
        return model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import FSDPModule

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    [model_class] = [base for base in type(model).__bases__ if base is not FSDPModule]
    copy = model_class(model.config).to(accelerator.device)
    copy.load_state_dict(state)
    return copy.train(model.training)


class LaunchError(RuntimeError):
    """The launcher started several processes that do not form one training run."""


def check_launch(accelerator) -> None:
    """Raises `LaunchError` when the launcher started `WORLD_SIZE` processes but accelerate runs each one alone:
    `torchrun` on a machine without GPUs and without `ACCELERATE_USE_CPU=true` gives N independent runs that
    would each train, and write, a model of their own."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes == 1:
        raise LaunchError(
            f"the launcher started {launched} processes, but accelerate sees {accelerator.num_processes} in this run. "
            "On CPUs start them with `ACCELERATE_USE_CPU=true torchrun --nproc_per_node N ...` (training/README.md).")


class ProcessMismatchError(RuntimeError):
    """The training processes hold different weights: each would train a model of its own."""


def check_processes_agree(what: str, tensors: Iterable, device) -> None:
    """Raises `ProcessMismatchError` when `tensors` differ between the processes of `torch.distributed`.

    A collective (every process calls it; with one process it does nothing): two float64 sums per tensor (of the
    values and of their squares), moved to `device` (the backend's: NCCL gathers CUDA tensors only), are
    gathered and compared. Called on the initial weights and their EMA copy before `accelerator.prepare` (where
    DDP would silently broadcast rank 0's weights but not the EMA's) and on the EMA weights at each checkpoint.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    checksum = torch.stack([torch.stack([tensor.detach().double().sum(), tensor.detach().double().pow(2).sum()])
                            for tensor in tensors]).reshape(-1).to(device)
    gathered = [torch.empty_like(checksum) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum)
    differing = [rank for rank, other in enumerate(gathered) if not torch.equal(other, gathered[0])]
    if differing:
        raise ProcessMismatchError(
            f"{what} differ between process 0 and process(es) {differing}: every process must build the model from "
            "the same seed (set_seed(recipe seed) before the model) and load the same files.")


def mean_over_processes(accelerator, values: Dict[str, Any]) -> Dict[str, float]:
    """The mean over all processes of each scalar in `values` (tensors or numbers), as floats: the logged
    training losses are the whole (multi-process) batch's, not rank 0's. A collective: every process calls it."""
    import torch

    names = list(values)
    stacked = torch.stack([torch.as_tensor(values[name], dtype=torch.float32).detach().reshape(()).to(accelerator.device)
                           for name in names])
    return dict(zip(names, accelerator.reduce(stacked, reduction="mean").tolist()))


def seed_step(seed: int, step: int) -> None:
    """Seeds every RNG (python, numpy, torch, CUDA; different per process) from `(seed, step)`.

    Called at the start of each optimizer step, so dropout, diffusion times, noise, prompt cuts and crops
    depend only on the step: a run resumed from a checkpoint takes exactly the random draws of an
    uninterrupted one.
    """
    from accelerate.utils import set_seed

    set_seed(seed * 1_000_003 + step, device_specific=True)


def batches_from(dataloader, batch_sampler, accelerator, start_batch: int) -> Iterator:
    """Yields batches epoch after epoch forever, starting `start_batch` batches into the sequence
    (a resumed run skips exactly the batches already seen). `batch_sampler` (the one inside `dataloader`)
    builds and shuffles each epoch's batches from its seed and the epoch only (`set_epoch`), so the order does
    not depend on the run; the number of batches may change from epoch to epoch (`len(dataloader)` after
    `set_epoch`: this process's share of that epoch's batches)."""
    epoch, skip = 0, start_batch
    while True:
        dataloader.set_epoch(epoch)
        batch_sampler.set_epoch(epoch)
        batches_this_epoch = len(dataloader)
        if batches_this_epoch == 0 and epoch == 0:
            raise ValueError("the training split gives no batch: is it empty, or is the batch limit too small?")
        if skip >= batches_this_epoch:  # an epoch wholly seen before the resume
            epoch, skip = epoch + 1, skip - batches_this_epoch
            continue
        yield from (accelerator.skip_first_batches(dataloader, skip) if skip else dataloader)
        epoch, skip = epoch + 1, 0


# ---------------------------------------------------------------------------------------------
# Checkpoints: output_dir/checkpoints/step_N (accelerator.save_state), keep the newest K
# ---------------------------------------------------------------------------------------------
def checkpoint_steps(output_dir: Path) -> List[int]:
    """Steps of the complete checkpoints in `output_dir/checkpoints`, ascending."""
    folder = Path(output_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"step_(\d+)", p.name)) and p.is_dir())


def latest_checkpoint(output_dir: Path) -> Optional[Path]:
    steps = checkpoint_steps(output_dir)
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{steps[-1]}" if steps else None


def end_of_step(step: int, recipe: dict, start_time: float, validate, accelerator, output_dir: Path, ema, progress) -> bool:
    """The bookkeeping after optimizer step `step`: validate every `val_interval` steps, save a checkpoint
    every `save_interval` steps, and both at the last step (`max_steps`) or when `max_minutes` is up.
    Returns True when the run must stop for time (the caller breaks out of its loop)."""
    out_of_time = recipe["max_minutes"] is not None and time.time() - start_time > 60 * recipe["max_minutes"]
    last_step = step >= recipe["max_steps"] or out_of_time
    if step % recipe["val_interval"] == 0 or last_step:
        validate(step)
    if step % recipe["save_interval"] == 0 or last_step:
        save_checkpoint(accelerator, output_dir, step, recipe["keep_checkpoints"], ema, progress)
    if out_of_time:
        accelerator.print(f"stopping at step {step}: max_minutes={recipe['max_minutes']} reached")
    return out_of_time


def save_checkpoint(accelerator, output_dir: Path, step: int, keep_last: int, ema=None, progress=None) -> Path:
    """`accelerator.save_state` (and `save_training_state` of `ema`, `progress`) into `checkpoints/step_N`,
    written under a temporary name and renamed when complete; then removes the oldest so `keep_last` remain (the new one is never removed, and a
    crash mid-write leaves the previous checkpoints intact). The best model lives in its own folder
    (`output_dir/best`) and is not touched by the rotation."""
    folder = Path(output_dir) / CHECKPOINTS_DIR
    final, partial = folder / f"step_{step}", folder / f"step_{step}.partial"
    shadow_params = None
    if ema is not None:  # only process 0 writes them: they must be every process's (whole, under FSDP)
        shadow_params = full_tensors(ema.shadow_params)
        check_processes_agree(f"the EMA weights at step {step}", shadow_params, accelerator.device)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if progress is not None:
            save_training_state(partial, ema, progress, shadow_params)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in checkpoint_steps(output_dir)[: -max(keep_last, 1)]:
            shutil.rmtree(folder / f"step_{old}")
    accelerator.wait_for_everyone()
    return final


def save_training_state(folder: Path, ema, progress: TrainingProgress, shadow_params: Optional[List[Any]] = None) -> None:
    """EMA weights to `ema.safetensors` (in parameter order; `shadow_params` when given: the whole tensors of FSDP
    shards, `full_tensors`), the counters to `training_state.json`."""
    from safetensors.torch import save_file

    ema_state = ema.state_dict()
    saved_params = ema_state.pop("shadow_params")
    shadow_params = saved_params if shadow_params is None else shadow_params
    save_file({str(index): tensor.detach().cpu().contiguous() for index, tensor in enumerate(shadow_params)},
              str(Path(folder) / EMA_FILE))
    state = {"progress": progress.state_dict(), "ema": ema_state}
    (Path(folder) / TRAINING_STATE_FILE).write_text(json.dumps(state, indent=2))


def read_training_state(checkpoint: Path) -> Dict[str, Any]:
    """`training_state.json` of a checkpoint: `{"progress": ..., "ema": ...}`, plain JSON (the EMA weights are
    in `ema.safetensors`)."""
    path = Path(checkpoint) / TRAINING_STATE_FILE
    if not path.is_file():
        raise RunFolderError(f"{checkpoint} has no {TRAINING_STATE_FILE}: not a complete checkpoint")
    return json.loads(path.read_text())


def upgrade_old_checkpoint(checkpoint: Path) -> None:
    """Rewrites a checkpoint saved before `training_state.json` existed (the EMA and the progress were
    accelerate custom objects, `custom_checkpoint_0.pkl` / `_1.pkl`) into the current layout, so that
    `accelerator.load_state` (which counts custom objects) and `load_training_state` accept it. The old files
    are read with `torch.load(weights_only=True)` (tensors and plain data only: nothing in them can run code)
    and kept, moved into `OLD_LAYOUT_DIR` inside the checkpoint. A current checkpoint is left as it is."""
    import torch
    from safetensors.torch import save_file

    checkpoint = Path(checkpoint)
    old_files = [checkpoint / f"custom_checkpoint_{index}.pkl" for index in (0, 1)]
    if (checkpoint / TRAINING_STATE_FILE).is_file() or not all(path.is_file() for path in old_files):
        return
    ema_state, progress = (torch.load(path, weights_only=True) for path in old_files)
    shadow_params = ema_state.pop("shadow_params")
    save_file({str(index): tensor.detach().cpu().contiguous() for index, tensor in enumerate(shadow_params)},
              str(checkpoint / EMA_FILE))
    partial = checkpoint / (TRAINING_STATE_FILE + ".partial")
    partial.write_text(json.dumps({"progress": progress, "ema": ema_state}, indent=2))
    partial.rename(checkpoint / TRAINING_STATE_FILE)
    (checkpoint / OLD_LAYOUT_DIR).mkdir(exist_ok=True)
    for path in old_files:
        path.rename(checkpoint / OLD_LAYOUT_DIR / path.name)


def load_training_state(checkpoint: Path, ema, progress: TrainingProgress) -> None:
    """Restores what `save_training_state` saved (EMA weights placed as the current ones are: `placed_like`)."""
    from safetensors.torch import load_file

    state = read_training_state(checkpoint)
    ema_state = dict(state["ema"])
    tensors = load_file(str(Path(checkpoint) / EMA_FILE))
    shadow_params = [tensors[str(index)] for index in range(len(tensors))]
    if len(shadow_params) != len(ema.shadow_params):
        raise RunFolderError(f"{checkpoint}: {len(shadow_params)} EMA tensors for {len(ema.shadow_params)} parameters")
    ema_state["shadow_params"] = [placed_like(saved, current) for saved, current in zip(shadow_params, ema.shadow_params)]
    ema.load_state_dict(ema_state)
    progress.load_state_dict(state["progress"])


def best_val_loss_on_record(output_dir: Path) -> float:
    """The validation loss of the model in `output_dir/best` (inf when there is none): a resumed run replaces
    it only with a better one, even when it was saved after the checkpoint the run resumes from."""
    record = Path(output_dir) / BEST_DIR / BEST_RECORD_FILE
    return float(json.loads(record.read_text())["val_loss"]) if record.is_file() else float("inf")


def write_best(output_dir: Path, write: Callable[[Path], None], step: int, val_loss: float) -> None:
    """Writes the best model (`write(folder)`) into `output_dir/best` atomically, with its step and validation
    loss in `best/validation.json`."""
    def write_with_record(folder: Path) -> None:
        write(folder)
        (folder / BEST_RECORD_FILE).write_text(json.dumps({"step": step, "val_loss": val_loss}))

    write_folder_atomically(Path(output_dir) / BEST_DIR, write_with_record)


def write_folder_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Calls `write(tmp_folder)` and swaps the result in for `target`, so `target` is always either the
    previous complete folder or the new complete one."""
    target = Path(target)
    partial, previous = target.with_name(target.name + ".partial"), target.with_name(target.name + ".previous")
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    partial.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


@contextlib.contextmanager
def ema_weights(ema, parameters: Iterable):
    """Within the block the model holds its EMA weights; the training weights come back after."""
    parameters = list(parameters)
    ema.store(parameters)
    ema.copy_to(parameters)
    try:
        yield
    finally:
        ema.restore(parameters)


# ---------------------------------------------------------------------------------------------
# TensorBoard pictures
# ---------------------------------------------------------------------------------------------
def tensorboard_writer(accelerator):
    """The `SummaryWriter` behind accelerate's TensorBoard tracker (None off the main process)."""
    return accelerator.get_tracker("tensorboard", unwrap=True) if accelerator.is_main_process else None


def mel_figure(real_mel, generated_mel, title: str = ""):
    """Two stacked log-mel spectrograms `(n_mels, frames)` (numpy), real on top, generated below, on one
    colour scale: smeared harmonics or missing high bands show up at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    low, high = float(min(real_mel.min(), generated_mel.min())), float(max(real_mel.max(), generated_mel.max()))
    for axis, mel, name in ((axes[0], real_mel, "real"), (axes[1], generated_mel, "generated")):
        image = axis.imshow(mel, origin="lower", aspect="auto", interpolation="none", vmin=low, vmax=high)
        axis.set_ylabel(f"{name}\nmel bin")
    axes[1].set_xlabel("frame")
    figure.colorbar(image, ax=axes, label="log mel")
    figure.suptitle(title)
    return figure


def pitch_figure(real_log_f0, predicted_log_f0, voiced, title: str = ""):
    """Pitch contours in Hz over codec frames: the real one (voiced frames solid, the interpolated
    unvoiced stretches faint) and the pitch predictor's, teacher-forced on the real durations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(8, 3))
    frames = np.arange(len(real_log_f0))
    real_hz = np.exp(real_log_f0)
    axis.plot(frames, real_hz, color="tab:blue", alpha=0.3, label="real (interpolated)")
    axis.plot(frames, np.where(voiced, real_hz, np.nan), color="tab:blue", label="real (voiced)")
    axis.plot(frames, np.exp(predicted_log_f0), color="tab:orange", label="predicted")
    axis.set_xlabel("frame")
    axis.set_ylabel("f0 (Hz)")
    axis.legend(loc="upper right")
    axis.set_title(title)
    figure.tight_layout()
    return figure
