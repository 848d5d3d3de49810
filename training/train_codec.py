"""Train the NaturalSpeech 2 codec (SoundStream-style) on a prepared dataset, with accelerate.

    accelerate launch --config_file training/configs/accelerate_cpu.yaml training/train_codec.py \\
        --config training/configs/codec_tiny.yaml --dataset data/prepared --output_dir runs/codec \\
        [--resume] [--key value ...]

Any recipe key can be overridden on the command line (`--max_steps 500 --lr 3e-4 --model.preset base`).

Each step takes a random `segment_samples` crop of every utterance in the batch and reconstructs it.
`extra_audio_dirs` adds untranscribed recordings to the training set and `augmentation` perturbs the
crops (speed, loudness, noise; `training/codec_data.py`). Crops and augmentation are made in the DataLoader's
`num_workers` worker processes, beside the training step, from each batch's own seed.
Generator loss = mel_loss_weight · multi-resolution log-mel L1 + time_loss_weight · waveform L1
+ phase_loss_weight · anti-wrapping phase loss (group delay + instantaneous frequency at the codec hop,
`ns2_hf.codec.losses.phase_loss`; ours, against the frame-rate buzz) + commitment_weight (codec config) · RVQ
commitment; from `gan_start_step` on, the multi-period +
multi-scale-STFT discriminator gets its own optimizer step and the generator adds
adversarial_loss_weight · adversarial + feature_matching_loss_weight · feature matching. Codebooks
follow moving averages, quantizer dropout comes from the codec config. `harmonic_phase: true` (Fourier decoder)
decodes every training and validation crop with the harmonic phase at its own pitch (Praat), as the pipelines
decode: the decoder's magnitudes are trained under the phase they are heard with.

`init_from: FOLDER` starts from a trained codec (its config replaces the recipe's `model`);
`replace_decoder: {decoder_type: fourier, ...}` then swaps in a fresh decoder with these config
fields (e.g. the Fourier decoder) on the trained encoder and codebooks. `train_only` freezes the rest of a
codec started with `init_from` (frozen parts: no gradient, eval mode, so a frozen quantizer neither updates
its codebooks nor drops quantizers):
- `decoder` trains the decoder alone on the full-depth quantized latents. The codes and latents stay
  bit-identical, so a prepared dataset's codes and an NS2 model trained on them remain valid: the decoder can
  keep improving after NS2 training has started.
- `encoder` trains the encoder alone against the frozen codebooks and decoder: the latent space (what a latent
  decodes to) is kept, the encoding of a recording changes (e.g. for voices the first run never heard).

Every `val_interval` steps the EMA weights reconstruct the validation utterances; the lowest
validation reconstruction loss is saved (the frame-rate buzz of the reconstructions is logged as
`val/buzz_share` and `val/grid_lock`, see `ns2_hf.metrics.frame_buzz`) to `output_dir/best` (`NS2CodecModel.save_pretrained` +
the feature extractor), ready for `prepare_dataset.py --codec`. `accelerator.save_state` goes to
`output_dir/checkpoints/step_N` every `save_interval` steps; TensorBoard logs to
`output_dir/tensorboard`.
"""

import contextlib
import math
import sys
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm
from transformers import get_scheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from ns2_hf.audio.mel import mel_spectrogram  # noqa: E402
from ns2_hf.codec import NS2CodecConfig, NS2CodecFeatureExtractor, NS2CodecModel  # noqa: E402
from ns2_hf.codec.discriminators import NS2CodecDiscriminator  # noqa: E402
from ns2_hf.pipelines.loading import load_model  # noqa: E402
from ns2_hf.codec.losses import (  # noqa: E402
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    multi_resolution_mel_loss,
    phase_loss,
    si_snr,
)
from ns2_hf.metrics.frame_buzz import frame_rate_buzz  # noqa: E402
from training.codec_data import CodecTrainingCrops, UntranscribedAudio, crop_pitch  # noqa: E402
from training.data import AUDIO, FrameBatchSampler, PreparedDataset, SeededBatches, SeededItems, load_prepared  # noqa: E402
from training.trainer_utils import (  # noqa: E402
    build_accelerator,
    check_processes_agree,
    mean_over_processes,
    end_of_step,
    BEST_DIR,
    TrainingProgress,
    batches_from,
    build_config,
    ema_weights,
    mel_figure,
    parse_recipe,
    resume_run,
    seed_step,
    start_run,
    tensorboard_writer,
    write_best,
)

# `train_only` -> the parts of the codec that stay frozen (requires_grad off, eval mode)
FROZEN_BY_TRAIN_ONLY = {None: (), "decoder": ("encoder", "quantizer"), "encoder": ("quantizer", "decoder")}


def masked_l1(prediction, target, mask):
    """Mean absolute error over valid samples. `(batch, samples)` each, `mask` bool."""
    return ((prediction - target).abs() * mask).sum() / mask.sum().clamp(min=1)


@contextlib.contextmanager
def frozen(module):
    """The generator's adversarial terms flow back through the discriminator without training it."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)


def reconstruction_losses(codec, audio, audio_mask, config, with_phase: bool, f0=None, voiced=None):
    """Encode-quantize-decode `audio (batch, samples)` (`audio_mask` True on real samples); returns the
    model output and the unweighted reconstruction terms of the generator loss. Given the crops' pitch (`f0`,
    `voiced` `(batch, frames)` of `crop_pitch`: the recipe's `harmonic_phase`) the Fourier decoder decodes with the
    harmonic phase at it, as the pipelines use it: the magnitudes learn to sound right under that phase. The phase loss only
    `with_phase` (a recipe with `phase_loss_weight` 0 does not compute it). The phase loss compares STFTs
    of 4 hops' window at the codec's hop, so the instantaneous-frequency term measures each partial's phase
    advance from one latent frame to the next (what a frame-synchronous phase pattern gets wrong), plus the
    group delay; not the absolute phase, which 80 latent frames per second barely pin down (trained with it, it
    stayed near chance, 0.8–0.95 against 1 for random phases, and the other terms barely moved)."""
    output = codec(audio, padding_mask=audio_mask, f0=f0, voiced=voiced)
    losses = {
        "mel_loss": multi_resolution_mel_loss(output.audio_values, audio, config.sampling_rate),
        "time_loss": masked_l1(output.audio_values, audio, audio_mask),
        "commitment_loss": output.commitment_loss,
    }
    if with_phase:
        phase = phase_loss(output.audio_values, audio, n_fft=4 * config.hop_length, hop_length=config.hop_length)
        losses["phase_loss"] = phase["gd"] + phase["iaf"]
    return output, losses


def main():
    recipe, args = parse_recipe(__doc__.split("\n")[0])
    output_dir = Path(args.output_dir)
    accelerator = build_accelerator(recipe, output_dir)
    checkpoint, lr_settings = start_run(accelerator, recipe, args, output_dir)  # refuses to reuse a run's folder

    # ---- model (initial weights from the recipe's seed alone: a recipe reproduces bit for bit) -------
    set_seed(recipe["seed"])
    if recipe["init_from"]:
        codec = load_model(NS2CodecModel, recipe["init_from"])
        config = codec.config
        if recipe["replace_decoder"]:  # a fresh decoder of another kind on the trained encoder and codebooks
            config = NS2CodecConfig(**{**config.to_dict(), **recipe["replace_decoder"]})
            trained = codec
            codec = NS2CodecModel(config)
            codec.encoder.load_state_dict(trained.encoder.state_dict())
            codec.quantizer.load_state_dict(trained.quantizer.state_dict())
    else:
        config = build_config(NS2CodecConfig, recipe["model"])
        codec = NS2CodecModel(config)
    frozen_parts = FROZEN_BY_TRAIN_ONLY.get(recipe["train_only"])
    if frozen_parts is None:
        raise ValueError(f"train_only must be one of {sorted(FROZEN_BY_TRAIN_ONLY, key=str)}, got {recipe['train_only']!r}.")
    if frozen_parts and not recipe["init_from"]:
        raise ValueError(f"train_only: {recipe['train_only']} needs init_from: a trained codec whose other parts to keep.")
    for name in frozen_parts:
        getattr(codec, name).requires_grad_(False)

    def train_mode(module):
        """Training mode, except the frozen parts (a frozen quantizer: no codebook updates, no dropout)."""
        module.train()
        for name in frozen_parts:
            getattr(module, name).eval()
    discriminator = NS2CodecDiscriminator(config)
    weights = {name: recipe[f"{name}_loss_weight"] for name in ("mel", "time", "phase", "adversarial", "feature_matching")}
    weights["commitment"] = config.commitment_weight
    with_phase = weights["phase"] > 0
    harmonic_phase = bool(recipe["harmonic_phase"])
    if harmonic_phase and config.decoder_type != "fourier":
        raise ValueError("harmonic_phase: true needs the Fourier decoder (decoder_type: fourier).")

    # ---- data: one random crop of segment_samples per utterance, batched by crop frames ------------
    dataset = load_prepared(args.dataset)
    rates = set(dataset["train"].unique("sampling_rate")) | set(dataset["validation"].unique("sampling_rate"))
    if rates != {config.sampling_rate}:
        raise ValueError(f"the dataset is sampled at {sorted(rates)} Hz, the codec at {config.sampling_rate} Hz")
    segment_samples = recipe["segment_samples"]
    train_set = PreparedDataset(dataset["train"], columns=(AUDIO,))
    if recipe["extra_audio_dirs"]:
        extra = UntranscribedAudio(recipe["extra_audio_dirs"], config.sampling_rate, config.hop_length)
        accelerator.print(f"training on {len(train_set)} corpus utterances + {len(extra)} untranscribed recordings")
        train_set = torch.utils.data.ConcatDataset([train_set, extra])
    segment_frames = math.ceil(segment_samples / config.hop_length)
    batch_sampler = SeededBatches(FrameBatchSampler([segment_frames] * len(train_set), recipe["max_frames_per_batch"],
                                                    seed=recipe["seed"]), seed=recipe["seed"])
    # the crops, their augmentation and pitch are made in the DataLoader workers, beside the training step
    crops = CodecTrainingCrops(segment_samples, config.sampling_rate, config.hop_length, recipe["augmentation"], harmonic_phase)
    train_loader = torch.utils.data.DataLoader(
        SeededItems(train_set), batch_sampler=batch_sampler, collate_fn=crops, num_workers=recipe["num_workers"]
    )
    validation = dataset["validation"]
    val_set = PreparedDataset(validation.select(range(min(recipe["val_max_items"], len(validation)))), columns=(AUDIO,))

    # ---- optimizers, schedules, EMA ------------------------------------------------------------------
    def optimizer_and_schedule(module, lr):
        optimizer = torch.optim.AdamW(
            [parameter for parameter in module.parameters() if parameter.requires_grad],  # not a frozen encoder
            lr=lr, betas=tuple(recipe["adam_betas"]), weight_decay=recipe["weight_decay"],
        )
        schedule = get_scheduler(lr_settings["lr_schedule"], optimizer, num_warmup_steps=lr_settings["warmup_steps"],
                                 num_training_steps=lr_settings["max_steps"])
        return optimizer, schedule

    generator_optimizer, generator_schedule = optimizer_and_schedule(codec, lr_settings["lr"])
    discriminator_optimizer, discriminator_schedule = optimizer_and_schedule(discriminator, lr_settings["discriminator_lr"])
    ema = EMAModel(codec.parameters(), decay=recipe["ema_decay"])
    check_processes_agree("the initial weights", [*codec.state_dict().values(), *discriminator.state_dict().values(),
                                                  *ema.shadow_params], accelerator.device)
    progress = TrainingProgress(schedule=lr_settings)
    (codec, discriminator, generator_optimizer, discriminator_optimizer, generator_schedule, discriminator_schedule,
     train_loader) = accelerator.prepare(
        codec, discriminator, generator_optimizer, discriminator_optimizer, generator_schedule, discriminator_schedule,
        train_loader,
    )
    unwrapped_codec = accelerator.unwrap_model(codec)
    ema.to(accelerator.device)

    if checkpoint is not None:
        resume_run(accelerator, checkpoint, ema, progress, output_dir, lr_settings,
                   {"lr": generator_schedule, "discriminator_lr": discriminator_schedule})
    accelerator.init_trackers("tensorboard")

    # ---- validation: EMA weights, whole utterances one at a time ---------------------------------------
    @torch.no_grad()
    def validate(step):
        """Each process reconstructs its share of the validation utterances (process 0 the first ones, whose
        pictures it logs); the sums are added up across processes."""
        unwrapped_codec.eval()
        totals, writer = {}, tensorboard_writer(accelerator)
        buzz = []
        with ema_weights(ema, unwrapped_codec.parameters()), \
                accelerator.split_between_processes(list(range(len(val_set)))) as own_indices:
            for index in own_indices:
                audio = val_set[index][AUDIO].to(accelerator.device)[None]
                mask = torch.ones_like(audio, dtype=torch.bool)
                pitch = crop_pitch(audio, mask, config.sampling_rate, config.hop_length) if harmonic_phase else (None, None)
                output, losses = reconstruction_losses(unwrapped_codec, audio, mask, config, with_phase, *pitch)
                losses["loss"] = (weights["mel"] * losses["mel_loss"] + weights["time"] * losses["time_loss"]
                                  + weights["phase"] * losses.get("phase_loss", 0.0))
                losses["si_snr"] = si_snr(output.audio_values, audio).mean()
                for name, value in losses.items():
                    totals[name] = totals.get(name, 0.0) + float(value)
                with contextlib.suppress(ValueError):  # an utterance with no voiced frame has no buzz share
                    buzz.append(frame_rate_buzz(output.audio_values[0].float().cpu().numpy(), config.sampling_rate,
                                                config.frame_rate))
                if writer is not None and index < recipe["val_log_items"]:
                    mels = [
                        mel_spectrogram(wave[0].float().cpu(), config.sampling_rate, hop_length=config.hop_length)[0].numpy()
                        for wave in (audio, output.audio_values)
                    ]
                    writer.add_figure(f"val/mel_{index}", mel_figure(*mels, title=val_set[index]["id"]), step)
                    writer.add_audio(f"val/audio_{index}_generated", output.audio_values[0].clamp(-1, 1).cpu(), step,
                                     sample_rate=config.sampling_rate)
                    writer.add_audio(f"val/audio_{index}_real", audio[0].cpu(), step, sample_rate=config.sampling_rate)
            names = ("loss", "mel_loss", "time_loss", *(("phase_loss",) if with_phase else ()), "commitment_loss", "si_snr")
            summed = accelerator.reduce(torch.tensor(
                [totals.get(name, 0.0) for name in names] + [sum(measured[name] for measured in buzz)
                                                             for name in ("buzz_share", "grid_lock")] + [len(buzz)],
                dtype=torch.float64, device=accelerator.device), reduction="sum").tolist()
            totals = {name: value / len(val_set) for name, value in zip(names, summed)}
            if summed[-1]:  # utterances with a buzz share (not every one has voiced frames)
                totals.update(buzz_share=summed[-3] / summed[-1], grid_lock=summed[-2] / summed[-1])
            accelerator.log({f"val/{name}": value for name, value in totals.items()}, step=step)
            if totals["loss"] < progress.best_val_loss:
                progress.best_val_loss = totals["loss"]
                if accelerator.is_main_process:
                    def write_codec(folder):
                        unwrapped_codec.save_pretrained(folder)
                        NS2CodecFeatureExtractor(sampling_rate=config.sampling_rate).save_pretrained(folder)

                    write_best(output_dir, write_codec, step, totals["loss"])
        train_mode(unwrapped_codec)
        accelerator.wait_for_everyone()

    # ---- training loop ------------------------------------------------------------------------------
    codec.train()
    train_mode(unwrapped_codec)
    discriminator.train()
    batches = batches_from(train_loader, batch_sampler, accelerator, progress.step * recipe["gradient_accumulation_steps"])
    bar = tqdm(total=recipe["max_steps"], initial=progress.step, disable=not accelerator.is_local_main_process, desc="codec")
    start_time, window_seconds, window_frames = time.time(), 0.0, 0  # throughput counts training steps only
    while progress.step < recipe["max_steps"]:
        step_start = time.time()
        # load first (starting a data loader iterator draws from the RNG), then seed from the step alone: dropout
        # and quantizer dropout are the same whether or not the run was resumed (the crops carry their batch's seed)
        step_batches = [next(batches) for _ in range(recipe["gradient_accumulation_steps"])]
        seed_step(recipe["seed"], progress.step)
        for batch in step_batches:
            with accelerator.accumulate(codec, discriminator):
                audio, audio_mask = batch[AUDIO], batch["audio_mask"]  # the crops (CodecTrainingCrops)
                output, losses = reconstruction_losses(codec, audio, audio_mask, config, with_phase, batch.get("f0"),
                                                       batch.get("voiced"))
                gan_on = progress.step >= recipe["gan_start_step"]
                if gan_on:  # discriminator step on real crops vs detached reconstructions
                    real_logits, real_features = discriminator(audio)
                    fake_logits, _ = discriminator(output.audio_values.detach())
                    losses["discriminator_loss"] = discriminator_loss(real_logits, fake_logits)
                    accelerator.backward(losses["discriminator_loss"])
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(discriminator.parameters(), recipe["max_grad_norm"])
                    discriminator_optimizer.step()
                    discriminator_optimizer.zero_grad()
                    with frozen(accelerator.unwrap_model(discriminator)) as judge:
                        fake_logits, fake_features = judge(output.audio_values)
                    losses["adversarial_loss"] = generator_adversarial_loss(fake_logits)
                    losses["feature_matching_loss"] = feature_matching_loss(real_features, fake_features)
                loss = sum(weights[name.removesuffix("_loss")] * value for name, value in losses.items()
                           if name != "discriminator_loss")
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(codec.parameters(), recipe["max_grad_norm"])
                generator_optimizer.step()
                generator_optimizer.zero_grad()
            window_frames += int(audio_mask.sum()) // config.hop_length
        generator_schedule.step()
        if gan_on:
            discriminator_schedule.step()
        ema.step(unwrapped_codec.parameters())
        progress.step += 1
        window_seconds += time.time() - step_start
        step = progress.step

        if step % recipe["log_interval"] == 0 or step == 1:
            frames_per_second = window_frames * accelerator.num_processes / window_seconds
            # the means over processes (the grad norm is the same on every one: the gradients are all-reduced)
            logs = {f"train/{name}": value for name, value in mean_over_processes(accelerator, {**losses, "loss": loss}).items()}
            logs.update({"train/lr": generator_schedule.get_last_lr()[0], "train/frames_per_second": frames_per_second})
            if grad_norm is not None:  # None under DeepSpeed, which clips by itself
                logs["train/grad_norm"] = float(grad_norm)
            accelerator.log(logs, step=step)
            bar.set_postfix(loss=f"{logs['train/loss']:.3f}", mel=f"{logs['train/mel_loss']:.3f}", fps=f"{frames_per_second:.0f}")
            window_seconds, window_frames = 0.0, 0
        bar.update(1)
        if end_of_step(step, recipe, start_time, validate, accelerator, output_dir, ema, progress):
            break
    bar.close()
    # every process at the same point before the process group goes (a gloo run that destroyed it with one
    # process still finishing hung at exit, rarely; pytorch/pytorch#75097)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    accelerator.print(f"best validation loss {progress.best_val_loss:.4f} -> {output_dir / BEST_DIR}")


if __name__ == "__main__":
    main()
