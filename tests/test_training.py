"""Training scripts: recipe overrides, checkpoint rotation, and (slow) the whole chain run through
`accelerate launch` on a few corpus utterances — prepare → aligner → prepare --aligner → codec →
prepare --codec → NS2 → `NS2Pipeline.from_pretrained(best)` — with resume and TensorBoard checks."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "training" / "configs"
sys.path.insert(0, str(REPO_ROOT))

from training.trainer_utils import (  # noqa: E402
    BEST_DIR,
    RecipeError,
    apply_overrides,
    checkpoint_steps,
    latest_checkpoint,
    save_checkpoint,
    write_folder_atomically,
)

SPEAKERS = ("fes_kal", "kok_alpha")  # a festival voice and a Kokoro voice
UTTERANCES_PER_SPEAKER = 5


# ---------------------------------------------------------------------------------------------------
# Fast: recipes, accelerate configs, checkpoint helpers
# ---------------------------------------------------------------------------------------------------
def test_overrides_parse_values_reach_nested_keys_and_reject_typos():
    recipe = {"lr": 1e-3, "latent_scale": "auto", "max_minutes": None, "model": {"preset": "tiny"}}
    updated = apply_overrides(recipe, ["--lr", "3e-4", "--max_minutes", "2.5", "--latent_scale", "0.5",
                                       "--model.preset", "base", "--model.hidden_size", "64"])
    assert updated == {"lr": 3e-4, "latent_scale": 0.5, "max_minutes": 2.5,
                       "model": {"preset": "base", "hidden_size": 64}}
    assert recipe["lr"] == 1e-3  # the input is not modified
    # YAML 1.1 reads `no` as false: a string key keeps the word, a boolean key gets the boolean
    assert apply_overrides({"mixed_precision": "bf16", "flag": True}, ["--mixed_precision", "no", "--flag", "no"]) == \
        {"mixed_precision": "no", "flag": False}
    with pytest.raises(RecipeError, match="unknown recipe key"):
        apply_overrides(recipe, ["--learning_rate", "1"])
    with pytest.raises(RecipeError, match="pairs"):
        apply_overrides(recipe, ["--lr"])
    with pytest.raises(RecipeError, match="not a section"):
        apply_overrides(recipe, ["--lr.x", "1"])


@pytest.mark.parametrize("name", ["cpu", "1gpu", "multigpu", "deepspeed_zero2"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"accelerate_{name}.yaml"))
    assert config.num_processes >= 1
    assert (config.distributed_type.value == "DEEPSPEED") == (name == "deepspeed_zero2")


@pytest.mark.parametrize("stage", ["codec", "ns2"])
def test_recipes_share_keys_and_build_model_configs(stage):
    from training.trainer_utils import build_config

    tiny, base = (yaml.safe_load(open(CONFIGS / f"{stage}_{size}.yaml")) for size in ("tiny", "base"))
    assert set(tiny) == set(base)
    if stage == "codec":
        from ns2_hf.codec import NS2CodecConfig as config_class
    else:
        from ns2_hf.ns2 import NS2Config as config_class
    assert build_config(config_class, tiny["model"]).to_dict() == config_class.tiny().to_dict()
    assert build_config(config_class, base["model"]).to_dict() == config_class().to_dict()


def test_deepspeed_gets_a_micro_batch_size_the_frame_batches_cannot_give():
    from types import SimpleNamespace

    from training.trainer_utils import give_deepspeed_a_micro_batch_size

    config = {"train_micro_batch_size_per_gpu": "auto", "zero_optimization": {"stage": 2}}
    accelerator = SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(deepspeed_config=config)))
    give_deepspeed_a_micro_batch_size(accelerator)
    assert config == {"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 2}}
    give_deepspeed_a_micro_batch_size(SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=None)))  # DDP: nothing


def test_processes_that_do_not_form_one_run_are_refused(monkeypatch):
    from accelerate import Accelerator

    from training.trainer_utils import LaunchError, check_launch

    accelerator = Accelerator(cpu=True)
    check_launch(accelerator)
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun started two, accelerate runs this one alone
    with pytest.raises(LaunchError, match="ACCELERATE_USE_CPU=true torchrun"):
        check_launch(accelerator)


def test_resumed_batch_stream_continues_exactly_across_epochs_of_changing_length():
    from accelerate import Accelerator

    from training.data import FrameBatchSampler
    from training.trainer_utils import batches_from

    lengths = np.random.default_rng(0).integers(5, 60, size=40)
    sampler = FrameBatchSampler(lengths, max_frames_per_batch=150, seed=4)
    per_epoch = [sampler.num_batches(epoch) for epoch in range(6)]
    assert len(set(per_epoch)) > 1  # the epochs differ in length: the skip must count each one's own
    accelerator = Accelerator(cpu=True)
    loader = accelerator.prepare(torch.utils.data.DataLoader(range(len(lengths)), batch_sampler=sampler))
    stream = batches_from(loader, sampler, accelerator, 0)
    straight = [next(stream).tolist() for _ in range(sum(per_epoch[:3]) + 3)]
    for start in (per_epoch[0] - 1, per_epoch[0] + 2, sum(per_epoch[:2]) + 1):
        resumed = batches_from(loader, sampler, accelerator, start)
        assert [next(resumed).tolist() for _ in range(len(straight) - start)] == straight[start:]


def test_checkpoint_rotation_keeps_newest_and_never_touches_best(tmp_path):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(2, 2))
    (tmp_path / BEST_DIR).mkdir()
    (tmp_path / "checkpoints" / "step_9.partial").mkdir(parents=True)  # a crash mid-write: never "latest"
    for step in (2, 4, 6):
        with torch.no_grad():
            model.weight.fill_(step)
        save_checkpoint(accelerator, tmp_path, step, keep_last=2)
    assert checkpoint_steps(tmp_path) == [4, 6]
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_6"
    assert (tmp_path / BEST_DIR).is_dir()
    accelerator.load_state(str(tmp_path / "checkpoints" / "step_4"))
    assert torch.all(model.weight == 4)


def test_write_folder_atomically_keeps_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "best"
    write_folder_atomically(target, lambda folder: (folder.mkdir(), (folder / "a").write_text("1")))
    with pytest.raises(RuntimeError):
        write_folder_atomically(target, lambda folder: (folder.mkdir(), (_ for _ in ()).throw(RuntimeError("disk"))))
    assert (target / "a").read_text() == "1"
    write_folder_atomically(target, lambda folder: (folder.mkdir(), (folder / "b").write_text("2")))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".partial")) == ["best"]
    assert [p.name for p in target.iterdir()] == ["b"]


# ---------------------------------------------------------------------------------------------------
# Slow: the whole chain through `accelerate launch`
# ---------------------------------------------------------------------------------------------------
def run(*command, timeout=300, **environment):
    """Runs a command from the repository root (with `environment` variables added); fails the test with its
    output if it fails."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO_ROOT), **environment)
    result = subprocess.run([str(c) for c in command], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return result.stdout + result.stderr


def launch(script, *arguments):
    return run(sys.executable, "-m", "accelerate.commands.launch", "--config_file", CONFIGS / "accelerate_cpu.yaml",
               REPO_ROOT / "training" / script, *arguments)


def launch_two_processes(script, *arguments):
    """Two CPU processes (gloo), the route training/README.md documents: `accelerate launch --cpu
    --num_processes 2` starts only one."""
    return run(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", REPO_ROOT / "training" / script,
               *arguments, ACCELERATE_USE_CPU="true")


def launch_fsdp_two_processes(script, *arguments):
    """Two CPU processes under FSDP2 with the shipped `accelerate_fsdp.yaml` (tests/fsdp_on_cpu.py: accelerate
    enables FSDP on GPUs only)."""
    return run(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", REPO_ROOT / "tests" / "fsdp_on_cpu.py",
               CONFIGS / "accelerate_fsdp.yaml", REPO_ROOT / "training" / script, *arguments, ACCELERATE_USE_CPU="true")


def prepare(source, output_dir, *arguments):
    return run(sys.executable, REPO_ROOT / "training" / "prepare_dataset.py", "--audiofolder", source,
               "--output_dir", output_dir, "--codec_config", "tiny", "--holdout_speakers", "",
               "--validation_fraction", "0.2", *arguments)


CODEC_STEPS = ["--max_steps", "4", "--gan_start_step", "2", "--warmup_steps", "1", "--log_interval", "1",
               "--val_interval", "4", "--save_interval", "2", "--val_max_items", "1", "--val_log_items", "1",
               "--segment_samples", "4000", "--max_frames_per_batch", "40"]
NS2_STEPS = ["--max_steps", "6", "--warmup_steps", "2", "--log_interval", "1", "--val_interval", "6",
             "--save_interval", "2", "--keep_checkpoints", "1", "--val_log_items", "1", "--val_inference_steps", "2",
             "--latent_scale_batches", "2", "--max_frames_per_batch", "1200"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory, corpus_dir):
    """Every stage on 10 utterances of 2 speakers; returns the folders."""
    root = tmp_path_factory.mktemp("chain")
    source = root / "corpus"
    (source / "audio").mkdir(parents=True)
    with open(corpus_dir / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked = [row for speaker in SPEAKERS for row in [r for r in rows if r["speaker_id"] == speaker][:UTTERANCES_PER_SPEAKER]]
    with open(source / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(picked)
    for row in picked:
        os.symlink(corpus_dir / row["file_name"], source / row["file_name"])

    folders = {name: root / name for name in ("data", "aligner", "codec", "ns2")}
    prepare(source, folders["data"])
    launch_aligner = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", CONFIGS / "accelerate_cpu.yaml",
                      REPO_ROOT / "training" / "train_aligner.py"]
    run(*launch_aligner, "--dataset", folders["data"], "--output_dir", folders["aligner"], "--size", "tiny",
        "--max_steps", "5")
    prepare(source, folders["data"], "--aligner", folders["aligner"])
    folders["codec_log"] = launch("train_codec.py", "--config", CONFIGS / "codec_tiny.yaml", "--dataset", folders["data"],
                                  "--output_dir", folders["codec"], *CODEC_STEPS)
    prepare(source, folders["data"], "--codec", folders["codec"] / BEST_DIR)
    folders["ns2_log"] = launch("train_ns2.py", "--config", CONFIGS / "ns2_tiny.yaml", "--dataset", folders["data"],
                                "--codec", folders["codec"] / BEST_DIR, "--output_dir", folders["ns2"], *NS2_STEPS,
                                "--val_objective_metrics", "[dnsmos]", "--val_objective_items", "1")
    return folders


@pytest.mark.slow
def test_codec_best_folder_loads_and_reconstructs(chain):
    from ns2_hf.codec import NS2CodecFeatureExtractor, NS2CodecModel

    best = chain["codec"] / BEST_DIR
    codec = NS2CodecModel.from_pretrained(best).eval()
    features = NS2CodecFeatureExtractor.from_pretrained(best)
    audio = np.random.default_rng(0).standard_normal(3001).astype(np.float32) * 0.1
    inputs = features(audio, sampling_rate=features.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        output = codec(inputs["input_values"], padding_mask=inputs["padding_mask"])
    assert output.audio_values.shape == (1, 3001) and torch.isfinite(output.audio_values).all()
    assert checkpoint_steps(chain["codec"]) == [2, 4]
    assert "discriminator_loss" in _scalars(chain["codec"])  # the GAN was switched on


@pytest.mark.slow
def test_ns2_best_pipeline_synthesizes_finite_audio_of_the_predicted_length(chain):
    from ns2_hf.pipelines.pipeline_ns2 import NS2Pipeline

    pipeline = NS2Pipeline.from_pretrained(chain["ns2"] / BEST_DIR)
    pipeline.set_progress_bar_config(disable=True)
    prompt = np.sin(np.linspace(0, 2000, 24000)).astype(np.float32) * 0.3
    output = pipeline("The birch canoe slid.", prompt, prompt_sampling_rate=pipeline.sampling_rate,
                      num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    audio, durations = output.audios[0], output.durations[0]
    assert np.isfinite(audio).all()
    assert len(audio) == int(durations.sum()) * pipeline.hop_length > 0
    assert pipeline.model.config.latent_scale != 1.0  # `latent_scale: auto` was measured and saved


@pytest.mark.slow
def test_ns2_checkpoints_rotate_and_keep_best(chain):
    assert checkpoint_steps(chain["ns2"]) == [6]  # keep_checkpoints 1: only the newest
    assert (chain["ns2"] / BEST_DIR / "model_index.json").is_file()


def _event_accumulator(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "audio": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def _scalars(run_dir):
    return {tag.split("/", 1)[1] for tag in _event_accumulator(run_dir).Tags()["scalars"]}


@pytest.mark.slow
def test_tensorboard_holds_every_loss_term_pictures_and_audio(chain):
    tags = _event_accumulator(chain["ns2"]).Tags()
    for split in ("train", "val"):
        for name in ("loss", "data_loss", "score_loss", "ce_rvq_loss", "duration_loss", "pitch_loss"):
            assert f"{split}/{name}" in tags["scalars"], (split, name, tags["scalars"])
    for name in ("lr", "grad_norm", "frames_per_second"):
        assert f"train/{name}" in tags["scalars"]
    assert {"val/mel_0", "val/pitch_0"} <= set(tags["images"])
    assert {"val/audio_0_generated", "val/audio_0_real"} <= set(tags["audio"])
    # periodic objective metrics of the validation syntheses (switched on in this run)
    assert {"val_objective/dnsmos_ovrl", "val_objective/dnsmos_sig"} <= set(tags["scalars"]), tags["scalars"]

    codec_tags = _event_accumulator(chain["codec"]).Tags()
    for name in ("mel_loss", "time_loss", "commitment_loss", "adversarial_loss", "feature_matching_loss",
                 "discriminator_loss", "lr", "grad_norm", "frames_per_second"):
        assert f"train/{name}" in codec_tags["scalars"], name
    assert "val/mel_0" in codec_tags["images"] and "val/audio_0_generated" in codec_tags["audio"]


def _checkpoint_weights(checkpoint, name="model.safetensors"):
    from safetensors.torch import load_file

    return load_file(str(checkpoint / name))


def _assert_resume_matches_uninterrupted(script, arguments, tmp_path, weight_files, launcher=launch, resume_arguments=()):
    """Runs 4 steps (checkpoints at 2 and 4) with `launcher`; then, in a copy whose step-4 checkpoint is removed (as
    if interrupted after step 2), `--resume` to step 4 (with `resume_arguments` added): the weights must equal the
    uninterrupted run's."""
    arguments = [*arguments, "--max_steps", "4", "--save_interval", "2", "--val_interval", "2", "--keep_checkpoints", "2",
                 "--val_log_items", "0"]
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    launcher(script, *arguments, "--output_dir", straight)
    shutil.copytree(straight, interrupted)
    shutil.rmtree(interrupted / "checkpoints" / "step_4")
    log = launcher(script, *arguments, *resume_arguments, "--output_dir", interrupted, "--resume")
    assert "resumed from" in log and "at step 2" in log
    for checkpoint in (interrupted / "checkpoints").iterdir():  # EMA and counters: safetensors + JSON, no pickle
        assert {"ema.safetensors", "training_state.json"} <= {path.name for path in checkpoint.iterdir()}
        assert not list(checkpoint.glob("custom_checkpoint_*"))
    for name in weight_files:
        expected, resumed = (_checkpoint_weights(run_dir / "checkpoints" / "step_4", name) for run_dir in (straight, interrupted))
        assert expected.keys() == resumed.keys()
        for key in expected:
            torch.testing.assert_close(resumed[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)
        at_two = _checkpoint_weights(interrupted / "checkpoints" / "step_2", name)
        assert any(not torch.equal(at_two[key], expected[key]) for key in expected)  # steps 3-4 changed the weights


@pytest.mark.slow
def test_ns2_resume_continues_exactly(chain, tmp_path):
    """Also with the prompt cuts made in the training process before the interruption and in two DataLoader
    workers after it: each batch draws its cuts from its own seed."""
    arguments = ["--config", CONFIGS / "ns2_tiny.yaml", "--dataset", chain["data"], "--codec", chain["codec"] / BEST_DIR,
                 *NS2_STEPS]
    _assert_resume_matches_uninterrupted("train_ns2.py", arguments, tmp_path, ["model.safetensors"],
                                         resume_arguments=["--num_workers", "2"])


@pytest.mark.slow
def test_ns2_prompts_cut_by_codes_give_the_latents_cut_from_latents(chain):
    """train_ns2.py cuts prompts by codes in the DataLoader workers and makes the latents on the device: with
    ns2-hf's codec (the other codecs: tests/test_other_codecs.py) the model gets what cutting latents gives."""
    from ns2_hf.codec import NS2CodecModel
    from ns2_hf.ns2 import NS2SpeechPrompter
    from conftest import load_training_script
    from training.data import CODES, DURATIONS, PreparedDataset, collate_batch, load_prepared

    train_ns2 = load_training_script("train_ns2")
    codec = NS2CodecModel.from_pretrained(chain["codec"] / BEST_DIR).eval()
    items = PreparedDataset(load_prepared(chain["data"], required_columns=[DURATIONS, CODES])["train"],
                            columns=("phoneme_ids", DURATIONS, "log_f0", "voiced", CODES))
    rows = [{**items[index], "batch_seed": 3} for index in range(len(items))]
    in_workers = train_ns2.latents_from_codes(train_ns2.NS2TrainingPrompts(0.1, 0.5, 0)(rows), codec)
    from_latents = NS2SpeechPrompter(0.1, 0.5, generator=torch.Generator().manual_seed(3))(
        train_ns2.utterances_of(collate_batch(rows), codec))
    assert in_workers.keys() == from_latents.keys() and len(rows) > 1
    for key, value in from_latents.items():
        assert torch.equal(in_workers[key], value), key


@pytest.mark.slow
def test_codec_resume_continues_exactly_with_the_gan_on(chain, tmp_path):
    """Also with augmented crops, made in the training process before the interruption and in two DataLoader
    workers after it: each batch draws from its own seed."""
    arguments = ["--config", CONFIGS / "codec_tiny.yaml", "--dataset", chain["data"], *CODEC_STEPS,
                 "--gan_start_step", "1", "--val_max_items", "1",
                 "--augmentation", "{probability: 0.8, speed: [0.85, 1.15], gain_db: [-10, 6], noise_snr_db: [30, 50]}"]
    # model.safetensors: the codec (with its EMA codebooks); model_1.safetensors: the discriminator
    _assert_resume_matches_uninterrupted("train_codec.py", arguments, tmp_path, ["model.safetensors", "model_1.safetensors"],
                                         resume_arguments=["--num_workers", "2"])


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train_codec.py", "train_ns2.py"])
def test_two_process_runs_checkpoint_once_and_resume_exactly(chain, tmp_path, script):
    """Two CPU processes: the scripts check at start and at every checkpoint that both hold the same weights
    (initial weights, EMA; they stop with ProcessMismatchError otherwise), process 0 alone writes each checkpoint
    (with both processes' random states), and a resume continues exactly."""
    if script == "train_codec.py":
        arguments, weight_files = ["--config", CONFIGS / "codec_tiny.yaml", *CODEC_STEPS], ["model.safetensors", "model_1.safetensors"]
    else:
        arguments = ["--config", CONFIGS / "ns2_tiny.yaml", "--codec", chain["codec"] / BEST_DIR, *NS2_STEPS]
        weight_files = ["model.safetensors"]
    _assert_resume_matches_uninterrupted(script, [*arguments, "--dataset", chain["data"]], tmp_path, weight_files,
                                         launcher=launch_two_processes)
    written = {path.name for path in (tmp_path / "straight" / "checkpoints" / "step_4").iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= written


@pytest.mark.slow
def test_fsdp_trains_ns2_as_ddp_does_resumes_exactly_and_saves_full_weights(chain, tmp_path):
    """Under FSDP2 (parameters, gradients and optimizer state sharded over two processes) train_ns2.py takes the
    steps DDP takes: the checkpoints' EMA weights (gathered whole) and the `best/` model (a full copy, safetensors)
    match a DDP run's, and so does the validation loss; a resume continues exactly."""
    arguments = ["--config", CONFIGS / "ns2_tiny.yaml", "--codec", chain["codec"] / BEST_DIR, *NS2_STEPS,
                 "--dataset", chain["data"]]
    _assert_resume_matches_uninterrupted("train_ns2.py", arguments, tmp_path / "fsdp", ["ema.safetensors"],
                                         launcher=launch_fsdp_two_processes)
    fsdp = tmp_path / "fsdp" / "straight"
    assert (fsdp / "checkpoints" / "step_4" / "pytorch_model_fsdp.bin").is_file()  # accelerate's FSDP checkpoint
    ddp = tmp_path / "ddp"
    launch_two_processes("train_ns2.py", *arguments, "--max_steps", "4", "--save_interval", "2", "--val_interval", "2",
                         "--val_log_items", "0", "--output_dir", ddp)
    for name in ("checkpoints/step_4/ema.safetensors", "best/model/model.safetensors"):
        expected, sharded = (_checkpoint_weights(run_dir, name) for run_dir in (ddp, fsdp))
        assert expected.keys() == sharded.keys()
        for key in expected:  # atol: attention key biases get no gradient but rounding noise, which Adam scales up
            torch.testing.assert_close(sharded[key], expected[key], rtol=1e-4, atol=1e-4, msg=f"{name}: {key}")
    expected, sharded = (json.loads((run_dir / BEST_DIR / "validation.json").read_text()) for run_dir in (ddp, fsdp))
    assert sharded["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train_codec.py", "train_ns2.py"])
def test_sharded_validation_gives_the_numbers_of_one_process(chain, tmp_path, script):
    """With the weights held still (lr 0; the codec's encoder and codebooks frozen), the validation loss at step
    2 must not depend on how many processes shared the validation set."""
    from training.data import load_prepared

    longest = max(load_prepared(chain["data"])["validation"]["num_frames"])
    if script == "train_codec.py":
        arguments = ["--config", CONFIGS / "codec_tiny.yaml", *CODEC_STEPS, "--init_from", chain["codec"] / BEST_DIR,
                     "--train_only", "decoder", "--lr", "0", "--discriminator_lr", "0", "--val_max_items", "2"]
    else:
        arguments = ["--config", CONFIGS / "ns2_tiny.yaml", "--codec", chain["codec"] / BEST_DIR, *NS2_STEPS, "--lr", "0",
                     "--val_max_frames_per_batch", str(longest)]  # one utterance per batch: one for each process
    arguments = [*arguments, "--dataset", chain["data"], "--max_steps", "2", "--val_interval", "2", "--save_interval", "2",
                 "--val_log_items", "0"]
    launch(script, *arguments, "--output_dir", tmp_path / "one")
    launch_two_processes(script, *arguments, "--output_dir", tmp_path / "two")
    one, two = (json.loads((tmp_path / run / BEST_DIR / "validation.json").read_text())["val_loss"] for run in ("one", "two"))
    assert two == pytest.approx(one, rel=1e-5)


def _train_one_part(chain, tmp_path, config, part, *arguments):
    """Fine-tune the chain's codec with `config` (a `train_only: part` recipe); asserts that the weights of `part`
    alone changed and returns the codecs before and after, and a noise clip to encode."""
    from safetensors.torch import load_file

    from ns2_hf.codec import NS2CodecModel

    start, trained = chain["codec"] / BEST_DIR, tmp_path / part / BEST_DIR
    launch("train_codec.py", "--config", CONFIGS / config, "--dataset", chain["data"], "--init_from", start,
           "--output_dir", tmp_path / part, *CODEC_STEPS, "--lr", "1e-2", *arguments)
    before, after = (load_file(folder / "model.safetensors") for folder in (start, trained))
    assert before.keys() == after.keys()
    for name in before:
        if not name.startswith(f"{part}."):
            assert torch.equal(before[name], after[name]), f"{name} changed"
    assert any(not torch.equal(before[name], after[name]) for name in before if name.startswith(f"{part}."))
    audio = torch.from_numpy(np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1)[None]
    return [NS2CodecModel.from_pretrained(folder).eval() for folder in (start, trained)], audio


@pytest.mark.slow
def test_codec_decoder_fine_tuning_keeps_the_codes(chain, tmp_path):
    """`train_only: decoder` (codec_cpu_small_decoder.yaml) changes the decoder alone: encoder weights,
    codebooks and therefore the codes of a prepared dataset stay bit-identical."""
    codecs, audio = _train_one_part(chain, tmp_path, "codec_cpu_small_decoder.yaml", "decoder", "--gan_start_step", "1000000")
    with torch.no_grad():
        codes = [codec.encode(audio).audio_codes for codec in codecs]
        decoded = [codec.decode(audio_codes=codes[0]).audio_values for codec in codecs]
    assert torch.equal(codes[0], codes[1]) and not torch.allclose(decoded[0], decoded[1])
    with pytest.raises(AssertionError, match="train_only: decoder needs init_from"):
        launch("train_codec.py", "--config", CONFIGS / "codec_cpu_small_decoder.yaml", "--dataset", chain["data"],
               "--output_dir", tmp_path / "no_init", *CODEC_STEPS)


@pytest.mark.slow
def test_codec_encoder_fine_tuning_keeps_the_latent_space(chain, tmp_path):
    """`train_only: encoder` (codec_cpu_encoder.yaml) changes the encoder alone: codebooks and decoder stay
    bit-identical, so any codes decode to the same audio (an NS2 model's latents keep their meaning), while the
    encoding of a recording moves."""
    codecs, audio = _train_one_part(chain, tmp_path, "codec_cpu_encoder.yaml", "encoder", "--extra_audio_dirs", "[]")
    with torch.no_grad():
        latents = [codec.encode(audio).latents for codec in codecs]
        codes = codecs[0].encode(audio).audio_codes
        decoded = [codec.decode(audio_codes=codes).audio_values for codec in codecs]
    assert not torch.allclose(latents[0], latents[1]) and torch.equal(decoded[0], decoded[1])


@pytest.mark.slow
def test_fourier_decoder_learns_from_the_discriminators(chain, tmp_path):
    """codec_cpu_fourier_decoder.yaml swaps a fresh Fourier decoder onto a trained codec and trains it with the
    GAN on. With the reconstruction losses switched off, only the discriminators can move the decoder: it must
    change between steps 2 and 4 when the adversarial and feature-matching terms are on, and stay put when they
    are off — so this fails if the discriminators ever stop training the generator."""
    from ns2_hf.codec import NS2CodecConfig

    arguments = ["--config", CONFIGS / "codec_cpu_fourier_decoder.yaml", "--dataset", chain["data"],
                 "--init_from", chain["codec"] / BEST_DIR, "--extra_audio_dirs", "[]", *CODEC_STEPS,
                 "--gan_start_step", "0", "--mel_loss_weight", "0", "--time_loss_weight", "0", "--lr", "1e-2",
                 "--replace_decoder", "{decoder_type: fourier, decoder_hidden_size: 32, fourier_intermediate_size: 64, "
                 "fourier_decoder_layers: 2}"]
    changed = {}
    for name, weights in (("gan", []), ("no_gan", ["--adversarial_loss_weight", "0", "--feature_matching_loss_weight", "0"])):
        launch("train_codec.py", *arguments, *weights, "--output_dir", tmp_path / name)
        checkpoints = tmp_path / name / "checkpoints"
        for file, prefix in (("model.safetensors", "decoder."), ("model_1.safetensors", "")):
            early, late = (_checkpoint_weights(checkpoints / f"step_{step}", file) for step in (2, 4))
            changed[name, file] = any(not torch.equal(early[key], late[key]) for key in early if key.startswith(prefix))
        assert NS2CodecConfig.from_pretrained(tmp_path / name / BEST_DIR).decoder_type == "fourier"
    assert changed["gan", "model.safetensors"], "the adversarial terms did not reach the decoder"
    assert not changed["no_gan", "model.safetensors"], "something other than the discriminators moved the decoder"
    assert changed["gan", "model_1.safetensors"] and changed["no_gan", "model_1.safetensors"]  # the discriminator trains


@pytest.mark.slow
def test_harmonic_phase_training_decodes_crops_at_their_pitch(chain, tmp_path):
    """`harmonic_phase: true` trains a Fourier decoder with every crop decoded at its own pitch: the first step's
    mel loss (same fresh decoder, same crops) differs from the same run's without it, and a convolutional
    decoder is refused up front."""
    arguments = ["--config", CONFIGS / "codec_cpu_fourier_decoder.yaml", "--dataset", chain["data"],
                 "--init_from", chain["codec"] / BEST_DIR, "--extra_audio_dirs", "[]", *CODEC_STEPS,
                 "--replace_decoder", "{decoder_type: fourier, decoder_hidden_size: 32, "
                 "fourier_intermediate_size: 64, fourier_decoder_layers: 2}"]
    first_losses = {}
    for name, flag in (("harmonic", "true"), ("plain", "false")):
        launch("train_codec.py", *arguments, "--harmonic_phase", flag, "--output_dir", tmp_path / name)
        first_losses[name] = _event_accumulator(tmp_path / name).Scalars("train/mel_loss")[0].value
    assert first_losses["harmonic"] != pytest.approx(first_losses["plain"], rel=1e-6)
    with pytest.raises(AssertionError, match="needs the Fourier decoder"):
        launch("train_codec.py", "--config", CONFIGS / "codec_cpu_small_decoder.yaml", "--dataset", chain["data"],
               "--init_from", chain["codec"] / BEST_DIR, "--harmonic_phase", "true", "--output_dir", tmp_path / "conv",
               *CODEC_STEPS)


@pytest.mark.slow
def test_the_phase_loss_trains_the_decoder(chain, tmp_path):
    """codec_cpu_phase_decoder.yaml adds the phase loss. With every other term off (mel, waveform, GAN), the
    decoder must move when `phase_loss_weight` is on and stay put when it is off: this fails if the phase term
    ever stops reaching the generator."""
    arguments = ["--config", CONFIGS / "codec_cpu_phase_decoder.yaml", "--dataset", chain["data"],
                 "--init_from", chain["codec"] / BEST_DIR, "--extra_audio_dirs", "[]", *CODEC_STEPS,
                 "--gan_start_step", "1000000", "--mel_loss_weight", "0", "--time_loss_weight", "0", "--lr", "1e-2"]
    changed = {}
    for name, weight in (("phase", "2.0"), ("no_phase", "0")):
        launch("train_codec.py", *arguments, "--phase_loss_weight", weight, "--output_dir", tmp_path / name)
        early, late = (_checkpoint_weights(tmp_path / name / "checkpoints" / f"step_{step}", "model.safetensors")
                       for step in (2, 4))
        changed[name] = any(not torch.equal(early[key], late[key]) for key in early if key.startswith("decoder."))
    assert changed["phase"], "the phase loss did not reach the decoder"
    assert not changed["no_phase"], "something other than the phase loss moved the decoder"


@pytest.mark.slow
def test_ns2_run_folder_is_never_reused_without_resume_and_a_resume_keeps_its_schedule(chain, tmp_path):
    """A second run into the chain's NS2 folder is refused before it writes anything; a resume asking for a
    longer run keeps the learning-rate schedule it was built with, and says so."""
    arguments = ["--config", CONFIGS / "ns2_tiny.yaml", "--dataset", chain["data"], "--codec", chain["codec"] / BEST_DIR,
                 *NS2_STEPS]
    files_before = {path: path.read_bytes() for path in chain["ns2"].rglob("*") if path.is_file()}
    with pytest.raises(AssertionError, match="is not empty .*pass --resume to continue that run"):
        launch("train_ns2.py", *arguments, "--output_dir", chain["ns2"])
    assert {path: path.read_bytes() for path in chain["ns2"].rglob("*") if path.is_file()} == files_before

    run_dir = tmp_path / "run"
    shutil.copytree(chain["ns2"], run_dir)
    log = launch("train_ns2.py", *arguments, "--output_dir", run_dir, "--resume", "--max_steps", "7",
                 "--val_objective_metrics", "[]")
    assert "keeping the run's learning-rate schedule" in log and "max_steps 6 -> 7" in log
    assert checkpoint_steps(run_dir) == [7]
    state = json.loads((run_dir / "checkpoints" / "step_7" / "training_state.json").read_text())
    assert state["progress"]["values"]["schedule"]["max_steps"] == 6
    assert (run_dir / "recipe.until_step_6.yaml").is_file()  # the run's recipe before the resume is kept


@pytest.mark.slow
def test_ns2_fine_tuning_starts_from_the_trained_weights_with_new_options(chain, tmp_path):
    """`init_from` (ns2_cpu_finetune_anchored.yaml): the run starts from the trained model's weights, architecture
    and latent scale — at learning rate 0 its best model equals the start — with the recipe's options applied
    (`pitch_normalization: prompt`); an override that would change a weight's shape is refused."""
    from safetensors.torch import load_file

    from ns2_hf.ns2 import NS2Config

    start = chain["ns2"] / BEST_DIR / "model"
    arguments = ["--config", CONFIGS / "ns2_tiny.yaml", "--dataset", chain["data"], "--codec", chain["codec"] / BEST_DIR,
                 *NS2_STEPS, "--init_from", start, "--model.pitch_normalization", "prompt"]
    launch("train_ns2.py", *arguments, "--output_dir", tmp_path / "frozen", "--lr", "0", "--weight_decay", "0")
    before, after = (load_file(folder / "model.safetensors") for folder in (start, tmp_path / "frozen" / BEST_DIR / "model"))
    assert before.keys() == after.keys() and all(torch.equal(before[name], after[name]) for name in before)
    tuned = NS2Config.from_pretrained(tmp_path / "frozen" / BEST_DIR / "model")
    assert tuned.pitch_normalization == "prompt"
    assert tuned.latent_scale == NS2Config.from_pretrained(start).latent_scale

    launch("train_ns2.py", *arguments, "--output_dir", tmp_path / "tuned", "--lr", "1e-3")
    moved = load_file(tmp_path / "tuned" / BEST_DIR / "model" / "model.safetensors")
    assert any(not torch.equal(before[name], moved[name]) for name in before)
    with pytest.raises(AssertionError, match="size mismatch"):
        launch("train_ns2.py", *arguments, "--output_dir", tmp_path / "wider", "--model.hidden_size", "48")
