"""Runs never destroy runs: a used run folder is refused without `--resume`, a resumed run keeps its
learning-rate schedule unless told otherwise (and says so), `best/` is only replaced by a better model,
checkpoints resume without unpickling anything that could run code, and the initial weights depend on the
recipe's seed alone."""

import json
import math
import pickle
import sys
from pathlib import Path

import pytest
import torch
import yaml
from diffusers.training_utils import EMAModel

from conftest import load_training_script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.trainer_utils import (  # noqa: E402
    RunFolderError,
    TrainingProgress,
    best_val_loss_on_record,
    check_run_folder,
    load_training_state,
    resumed_schedule,
    save_recipe,
    save_training_state,
    upgrade_old_checkpoint,
    write_best,
)


def test_a_used_run_folder_is_refused_without_resume(tmp_path):
    assert check_run_folder(tmp_path / "new", resume=False) is None
    assert check_run_folder(tmp_path, resume=False) is None  # an empty folder is fine
    (tmp_path / "recipe.yaml").write_text("lr: 1\n")
    with pytest.raises(RunFolderError, match="is not empty .*recipe.yaml.*pass --resume"):
        check_run_folder(tmp_path, resume=False)
    with pytest.raises(RunFolderError, match="--resume: no checkpoint"):
        check_run_folder(tmp_path, resume=True)
    (tmp_path / "checkpoints" / "step_4").mkdir(parents=True)
    assert check_run_folder(tmp_path, resume=True) == tmp_path / "checkpoints" / "step_4"


def test_a_resumed_run_keeps_its_schedule_unless_rescheduled_and_says_so():
    saved = {"lr": 1e-3, "lr_schedule": "cosine", "warmup_steps": 50, "max_steps": 2000}
    recipe = {**saved, "max_steps": 4000, "val_interval": 7}
    said = []
    assert resumed_schedule(recipe, saved, reschedule=False, print_fn=said.append) == saved
    assert "keeping the run's learning-rate schedule" in said[0] and "max_steps 2000 -> 4000" in said[0]
    assert resumed_schedule(recipe, saved, reschedule=True, print_fn=said.append)["max_steps"] == 4000
    assert "rebuilt (max_steps 2000 -> 4000)" in said[1]
    assert resumed_schedule(saved, saved, reschedule=False, print_fn=said.append) == saved and len(said) == 2


def test_a_resumed_run_with_another_recipe_keeps_the_old_one(tmp_path):
    save_recipe({"lr": 1.0}, tmp_path)
    save_recipe({"lr": 1.0}, tmp_path, step=10)  # the same recipe: nothing to keep
    save_recipe({"lr": 2.0}, tmp_path, step=20)
    assert yaml.safe_load((tmp_path / "recipe.until_step_20.yaml").read_text()) == {"lr": 1.0}
    assert yaml.safe_load((tmp_path / "recipe.yaml").read_text()) == {"lr": 2.0}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["recipe.until_step_20.yaml", "recipe.yaml"]


def test_best_keeps_its_record(tmp_path):
    assert best_val_loss_on_record(tmp_path) == float("inf")
    write_best(tmp_path, lambda folder: folder.mkdir(), step=6, val_loss=2.909)
    assert best_val_loss_on_record(tmp_path) == 2.909
    assert json.loads((tmp_path / "best" / "validation.json").read_text()) == {"step": 6, "val_loss": 2.909}


class RunsCode:
    """Unpickling this creates a file: the proof that a checkpoint could run code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def ema_and_progress(seed):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    ema = EMAModel(model.parameters(), decay=0.9)
    ema.step(model.parameters())
    progress = TrainingProgress(latent_scale=0.5 + seed, schedule={"lr": 1e-3})
    progress.step, progress.best_val_loss = 10 * seed, 1.0 + seed
    return ema, progress


def test_training_state_round_trips_without_pickle_and_never_runs_a_pickle(tmp_path):
    ema, progress = ema_and_progress(1)
    save_training_state(tmp_path, ema, progress)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ema.safetensors", "training_state.json"]
    marker = tmp_path / "ran"
    for index in (0, 1):  # a planted accelerate custom-object pickle is never opened
        (tmp_path / f"custom_checkpoint_{index}.pkl").write_bytes(pickle.dumps(RunsCode(marker)))
    restored_ema, restored = ema_and_progress(2)
    load_training_state(tmp_path, restored_ema, restored)
    assert not marker.exists()
    assert restored.state_dict() == progress.state_dict()
    assert restored_ema.optimization_step == ema.optimization_step
    for saved, loaded in zip(ema.shadow_params, restored_ema.shadow_params):
        assert torch.equal(saved, loaded)


def test_an_old_checkpoint_is_upgraded_read_with_weights_only_and_loads_in_accelerate(tmp_path):
    """Checkpoints written before training_state.json held the EMA and the progress as accelerate custom
    objects: they are rewritten into the current layout (read with `weights_only=True`, the old files kept
    aside), after which `accelerator.load_state` — which refuses unregistered custom objects — and
    `load_training_state` both accept them. A planted object is refused, not run."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(3, 2))
    accelerator.save_state(str(tmp_path / "old"))
    ema, progress = ema_and_progress(1)
    torch.save(ema.state_dict(), tmp_path / "old" / "custom_checkpoint_0.pkl")
    torch.save(progress.state_dict(), tmp_path / "old" / "custom_checkpoint_1.pkl")
    with pytest.raises(RuntimeError, match="custom checkpoints"):
        accelerator.load_state(str(tmp_path / "old"))
    upgrade_old_checkpoint(tmp_path / "old")
    assert sorted(path.name for path in (tmp_path / "old" / "old_layout").iterdir()) == [
        "custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl"]
    accelerator.load_state(str(tmp_path / "old"))
    restored_ema, restored = ema_and_progress(2)
    load_training_state(tmp_path / "old", restored_ema, restored)
    assert restored.state_dict() == progress.state_dict()
    assert torch.equal(restored_ema.shadow_params[0], ema.shadow_params[0])
    assert model.weight.shape == (2, 3)

    marker = tmp_path / "ran"
    (tmp_path / "planted").mkdir()
    torch.save(ema.state_dict(), tmp_path / "planted" / "custom_checkpoint_0.pkl")
    torch.save({"step": RunsCode(marker)}, tmp_path / "planted" / "custom_checkpoint_1.pkl")
    with pytest.raises(pickle.UnpicklingError):
        upgrade_old_checkpoint(tmp_path / "planted")
    assert not marker.exists()


def test_initial_weights_depend_on_the_recipe_seed_alone():
    from ns2_hf.ns2 import NS2Config

    build_model = load_training_script("train_ns2").build_model
    config = NS2Config.tiny()
    first = build_model(config, seed=0).state_dict()
    torch.rand(1000)  # whatever drew random numbers before (data loading, latent scale) does not matter
    again = build_model(config, seed=0).state_dict()
    other = build_model(config, seed=1).state_dict()
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert any(not torch.equal(first[key], other[key]) for key in first)


def test_resume_keeps_a_better_best_and_applies_the_kept_schedule(tmp_path):
    """`resume_run` on a real accelerate checkpoint: the best model saved after the checkpoint keeps its
    record (a worse model cannot replace it), and the schedule settings given (here a rebuilt one with
    another lr) are in effect for the next step."""
    from accelerate import Accelerator
    from transformers import get_scheduler

    from training.trainer_utils import resume_run, save_checkpoint

    def build(lr, max_steps):
        accelerator = Accelerator(cpu=True)
        model = torch.nn.Linear(2, 2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        schedule = get_scheduler("cosine", optimizer, num_warmup_steps=0, num_training_steps=max_steps)
        model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
        return accelerator, model, optimizer, schedule, EMAModel(model.parameters(), decay=0.9)

    accelerator, model, optimizer, schedule, ema = build(lr=1e-2, max_steps=10)
    progress = TrainingProgress(schedule={"lr": 1e-2, "lr_schedule": "cosine", "warmup_steps": 0, "max_steps": 10})
    for _ in range(4):
        optimizer.step()
        schedule.step()
    progress.step, progress.best_val_loss = 4, 3.0
    checkpoint = save_checkpoint(accelerator, tmp_path, 4, keep_last=2, ema=ema, progress=progress)
    write_best(tmp_path, lambda folder: folder.mkdir(), step=5, val_loss=2.5)  # validated after the checkpoint

    accelerator, model, optimizer, schedule, ema = build(lr=5e-3, max_steps=20)
    restored = TrainingProgress()
    rebuilt = {"lr": 5e-3, "lr_schedule": "cosine", "warmup_steps": 0, "max_steps": 20}
    resume_run(accelerator, checkpoint, ema, restored, tmp_path, rebuilt, {"lr": schedule})
    assert restored.step == 4 and restored.best_val_loss == 2.5
    assert restored.values["schedule"] == rebuilt
    expected_lr = 5e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 20))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(expected_lr)
    schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-3 * 0.5 * (1 + math.cos(math.pi * 5 / 20)))
