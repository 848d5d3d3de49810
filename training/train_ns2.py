"""Train the NaturalSpeech 2 latent diffusion model on a prepared dataset, with accelerate.

    accelerate launch --config_file training/configs/accelerate_cpu.yaml training/train_ns2.py \\
        --config training/configs/ns2_tiny.yaml --dataset data/prepared --codec runs/codec/best \\
        --output_dir runs/ns2 [--resume] [--key value ...]

Any recipe key can be overridden on the command line (`--max_steps 500 --lr 3e-4 --model.preset base`).
The dataset needs `durations` (prepare_dataset.py --aligner) and `codes` (--codec, made by the same
codec given here: ns2-hf's own or any of `ns2_hf.latent_codecs` — DAC, EnCodec, Mimi); its `tokenizer/` folder (the tokenizer that made `phoneme_ids`) goes into
the saved pipeline.

Per batch the speech prompter cuts a random span of whole phones of each utterance as its prompt (by the
stored codes, in the DataLoader's `num_workers` worker processes, from each batch's own seed: `NS2TrainingPrompts`),
the frozen codec turns the codes of prompt and target into the quantized latents (the diffusion target,
`codec.codes_to_latents`), and `NS2Model.forward` returns the five losses (data, score, CE-RVQ, duration,
pitch), all logged. With `latent_scale: auto` the model's `latent_scale` is set to 1 / std of the
latents of the first training batches (and saved in its config). With `init_from: DIR` (the `model/` folder of a
trained pipeline) the run fine-tunes that model instead: its architecture, weights and latent scale, with the
recipe's `model` fields applied as options that must keep every weight's shape (e.g. `pitch_normalization`).

Every `val_interval` steps the EMA weights are scored on the validation split with the same losses
(eval mode, one fixed seed for prompt cuts, diffusion times and noise, so numbers compare across
steps), a few validation texts are synthesized with the pipeline (`val_inference_steps` ODE steps)
for TensorBoard, and the lowest validation loss is saved as a full `NS2Pipeline` folder in
`output_dir/best` (tokenizer, EMA model, codec, scheduler, feature extractor).
`accelerator.save_state` goes to `output_dir/checkpoints/step_N` every `save_interval` steps;
TensorBoard logs to `output_dir/tensorboard`.
"""

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
from ns2_hf.codec import NS2CodecFeatureExtractor  # noqa: E402
from ns2_hf.latent_codecs import codec_latent_space  # noqa: E402
from ns2_hf.ns2 import NS2Config, NS2Model, NS2SpeechPrompter  # noqa: E402
from ns2_hf.ns2.prompt_pitch import prompt_pitch_statistics  # noqa: E402
from ns2_hf.pipelines.loading import load_latent_codec, load_model  # noqa: E402
from ns2_hf.pipelines.pipeline_ns2 import NS2Pipeline  # noqa: E402
from ns2_hf.schedulers import NS2Scheduler  # noqa: E402
from ns2_hf.text import NS2PhonemeTokenizer  # noqa: E402

from training.data import (  # noqa: E402
    CODES,
    DURATIONS,
    LOG_F0,
    PHONEME_IDS,
    VOICED,
    BATCH_SEED,
    FrameBatchSampler,
    PreparedDataset,
    SeededBatches,
    SeededItems,
    audio_as_float,
    collate_batch,
    load_prepared,
)
from training.trainer_utils import (  # noqa: E402
    build_accelerator,
    check_processes_agree,
    give_deepspeed_a_micro_batch_size,
    mean_over_processes,
    end_of_step,
    BEST_DIR,
    TrainingProgress,
    batches_from,
    build_config,
    ema_weights,
    full_model_copy,
    mel_figure,
    model_config_kwargs,
    parse_recipe,
    pitch_figure,
    resume_run,
    seed_step,
    start_run,
    tensorboard_writer,
    write_best,
)
from training.prepare_dataset import TOKENIZER_DIR  # noqa: E402

LOSS_NAMES = ("loss", "data_loss", "score_loss", "ce_rvq_loss", "duration_loss", "pitch_loss")


def add_arguments(parser):
    parser.add_argument("--codec", required=True,
                        help="the codec that made the dataset's codes (prepare_dataset.py --codec): a trained "
                             "NS2CodecModel folder, a DAC/EnCodec/Mimi adapter folder or transformers checkpoint")


def utterances_of(batch, codec=None):
    """A collated batch → one dict per utterance for the speech prompter: `phoneme_ids (L,)`,
    `durations (L,)`, `codes (n_q, F)`, `log_f0 (F,)`, `voiced (F,)` (the model's pitch loss uses it with
    `pitch_normalization: prompt`) and, given the `codec`, `latents (D, F)` (quantized codec latents from the codes)."""
    if codec is not None:
        with torch.no_grad():
            latents = codec.codes_to_latents(batch[CODES])
    utterances = []
    for index, (num_frames, num_phonemes) in enumerate(zip(batch["num_frames"].tolist(), batch["phoneme_mask"].sum(1).tolist())):
        utterances.append({
            PHONEME_IDS: batch[PHONEME_IDS][index, :num_phonemes],
            DURATIONS: batch[DURATIONS][index, :num_phonemes],
            CODES: batch[CODES][index, :, :num_frames],
            LOG_F0: batch[LOG_F0][index, :num_frames],
            VOICED: batch[VOICED][index, :num_frames],
        })
        if codec is not None:
            utterances[-1]["latents"] = latents[index, :, :num_frames]
    return utterances


class NS2TrainingPrompts:
    """The `collate_fn` of NS2 training: pads a batch of `SeededItems` and cuts every utterance into prompt and
    target by its codes (`NS2SpeechPrompter`, its draws from the batch's own seed), in the DataLoader workers,
    beside the training step. Returns the prompter's batch with `prompt_codes`; `latents_from_codes` completes it."""

    def __init__(self, min_ratio: float, max_ratio: float, pad_token_id: int):
        self.min_ratio, self.max_ratio, self.pad_token_id = min_ratio, max_ratio, pad_token_id

    def __call__(self, items):
        generator = torch.Generator().manual_seed(items[0][BATCH_SEED])
        prompter = NS2SpeechPrompter(self.min_ratio, self.max_ratio, generator=generator, pad_token_id=self.pad_token_id)
        return prompter(utterances_of(collate_batch(items)))


def latents_from_codes(inputs, codec):
    """A batch cut by codes (`NS2TrainingPrompts`, on the training device) → `NS2Model.forward`'s data arguments:
    `latents (B, D, F)` and `prompt_latents (B, D, P)` made from the codes of target and prompt (zero at padding)
    in place of `prompt_codes`. The same latents as cutting the utterances' latents: `codes_to_latents` works
    frame by frame."""
    inputs = dict(inputs)
    prompt_codes = inputs.pop("prompt_codes")
    with torch.no_grad():
        inputs["latents"] = codec.codes_to_latents(inputs[CODES]) * inputs["latent_mask"][:, None]
        inputs["prompt_latents"] = codec.codes_to_latents(prompt_codes) * inputs["prompt_mask"][:, None]
    return inputs


def build_model(config: NS2Config, seed: int) -> NS2Model:
    """A fresh `NS2Model` whose initial weights depend on the recipe's seed alone (not on what drew random
    numbers before), so a recipe reproduces bit for bit."""
    set_seed(seed)
    return NS2Model(config)


def main():
    recipe, args = parse_recipe(__doc__.split("\n")[0], add_arguments)
    output_dir = Path(args.output_dir)
    accelerator = build_accelerator(recipe, output_dir)
    checkpoint, lr_settings = start_run(accelerator, recipe, args, output_dir)  # refuses to reuse a run's folder

    # ---- frozen codec and tokenizer --------------------------------------------------------------------
    codec = load_latent_codec(args.codec).to(accelerator.device).requires_grad_(False)
    codebooks = codec.get_codebooks()
    tokenizer = NS2PhonemeTokenizer.from_pretrained(str(Path(args.dataset) / TOKENIZER_DIR))  # made the phoneme_ids

    # ---- data: utterances with durations and codes, batched by padded frames -----------------------------
    dataset = load_prepared(args.dataset, required_columns=(DURATIONS, CODES))
    # the prompter needs two phones with frames (one for the prompt, one for the target)
    dataset = dataset.filter(lambda durations: sum(d > 0 for d in durations) >= 2, input_columns=DURATIONS,
                             keep_in_memory=True)
    columns = (PHONEME_IDS, DURATIONS, LOG_F0, VOICED, CODES)
    train_set = PreparedDataset(dataset["train"], columns=columns)
    val_set = PreparedDataset(dataset["validation"], columns=columns)
    for split in (train_set, val_set):
        if len(split) == 0:
            raise ValueError("a split has no utterance with two or more phones: is the prepared dataset empty?")
        num_quantizers = len(split[0][CODES])
        if num_quantizers > codec.config.num_quantizers:
            raise ValueError(f"the dataset has {num_quantizers} codes per frame; codec {args.codec} has only "
                             f"{codec.config.num_quantizers} quantizers: prepare the codes with this codec")
    codebooks = codebooks[:num_quantizers]
    batch_sampler = SeededBatches(FrameBatchSampler(train_set.lengths, recipe["max_frames_per_batch"], seed=recipe["seed"]),
                                  seed=recipe["seed"])
    # the prompt cuts are made in the DataLoader workers, beside the training step
    prompts = NS2TrainingPrompts(recipe["prompt_min_ratio"], recipe["prompt_max_ratio"], tokenizer.pad_token_id)
    train_loader = torch.utils.data.DataLoader(
        SeededItems(train_set), batch_sampler=batch_sampler, collate_fn=prompts, num_workers=recipe["num_workers"]
    )
    val_loader = torch.utils.data.DataLoader(
        val_set, batch_sampler=FrameBatchSampler(val_set.lengths, recipe["val_max_frames_per_batch"], shuffle=False),
        collate_fn=collate_batch,
    )

    # ---- model (vocabulary from the tokenizer, latent size from the codec) ------------------------------
    initial = None
    if recipe["init_from"]:  # fine-tuning: a trained model's architecture, weights and latent scale
        initial = load_model(NS2Model, recipe["init_from"])
        _, options = model_config_kwargs(recipe["model"])  # may change options that keep every weight's shape
        config = NS2Config(**{**initial.config.to_dict(), **options})
    else:
        config = build_config(NS2Config, recipe["model"])
    config.vocab_size = len(tokenizer)
    config.pad_token_id = tokenizer.pad_token_id
    config.latent_dim = codec.config.latent_dim
    config.codec_latent_space = codec_latent_space(codec)  # the pipeline refuses a codec of another latent space
    largest_id = max(max(ids) for ids in dataset["train"][PHONEME_IDS])
    if largest_id >= config.vocab_size:
        raise ValueError(f"phoneme id {largest_id} is outside the {config.vocab_size} ids of the dataset's tokenizer")
    if initial is not None:
        for name, wanted in (("vocab_size", config.vocab_size), ("latent_dim", config.latent_dim),
                             ("codec_latent_space", config.codec_latent_space)):
            if getattr(initial.config, name) not in (wanted, None):
                raise ValueError(f"init_from {recipe['init_from']} has {name} {getattr(initial.config, name)}, but "
                                 f"this dataset's tokenizer and codec give {wanted}.")
        config.latent_scale = initial.config.latent_scale
    elif recipe["latent_scale"] == "auto":  # over every frame of the batches' utterances, prompts and targets
        latents = []
        for _, batch in zip(range(recipe["latent_scale_batches"]), iter(train_loader)):
            inputs = latents_from_codes({k: v.to(accelerator.device) for k, v in batch.items()}, codec)
            for name, mask in (("latents", "latent_mask"), ("prompt_latents", "prompt_mask")):
                latents.append(inputs[name].transpose(1, 2)[inputs[mask]])
        config.latent_scale = float(1.0 / torch.cat(latents).std())
    else:
        config.latent_scale = float(recipe["latent_scale"])
    accelerator.print(f"latent_scale = {config.latent_scale:.4f}")
    model = build_model(config, recipe["seed"])
    if initial is not None:
        model.load_state_dict(initial.state_dict())  # strict: the recipe's options changed no shape
    noise_scheduler = NS2Scheduler()  # the VP SDE: noises training latents, weights the loss, is saved for sampling

    # ---- optimizer, schedule, EMA ---------------------------------------------------------------------------
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr_settings["lr"], betas=tuple(recipe["adam_betas"]), weight_decay=recipe["weight_decay"]
    )
    schedule = get_scheduler(lr_settings["lr_schedule"], optimizer, num_warmup_steps=lr_settings["warmup_steps"],
                             num_training_steps=lr_settings["max_steps"])
    check_processes_agree("the initial weights", model.state_dict().values(), accelerator.device)
    progress = TrainingProgress(latent_scale=config.latent_scale, schedule=lr_settings)
    give_deepspeed_a_micro_batch_size(accelerator)
    model, optimizer, schedule, train_loader = accelerator.prepare(model, optimizer, schedule, train_loader)
    unwrapped_model = accelerator.unwrap_model(model)
    # over the prepared parameters: under FSDP these are this process's shards, and so is the EMA copy
    ema = EMAModel(unwrapped_model.parameters(), decay=recipe["ema_decay"])

    if checkpoint is not None:
        resume_run(accelerator, checkpoint, ema, progress, output_dir, lr_settings, {"lr": schedule})
        unwrapped_model.config.latent_scale = progress.values["latent_scale"]
    accelerator.init_trackers("tensorboard")

    # ---- validation: EMA weights, eval mode, fixed randomness -------------------------------------------------
    def build_pipeline(evaluated):
        pipeline = NS2Pipeline(
            tokenizer=tokenizer,
            model=evaluated,
            codec=codec,
            scheduler=NS2Scheduler.from_config(noise_scheduler.config),
            feature_extractor=NS2CodecFeatureExtractor(sampling_rate=codec.config.sampling_rate),
        )
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    @torch.no_grad()
    def log_examples(writer, step, evaluated):
        """Per example: pitch predicted (teacher-forced durations, prompt from another utterance of the
        speaker when there is one) vs real; mel and audio of the pipeline's synthesis vs the recording."""
        rows, speakers = dataset["validation"], dataset["validation"]["speaker_id"]
        sampling_rate, hop_length = codec.config.sampling_rate, codec.config.hop_length
        for index in range(min(recipe["val_log_items"], len(rows))):
            row = rows[index]
            same_speaker = [i for i, speaker in enumerate(speakers) if speaker == speakers[index] and i != index]
            prompt_row = rows[same_speaker[0]] if same_speaker else row
            prompt_audio = torch.from_numpy(audio_as_float(prompt_row["audio"]))
            prompt_latents = codec.encode(prompt_audio[None].to(accelerator.device)).quantized_latents
            prompt_mask = torch.ones(1, prompt_latents.shape[-1], dtype=torch.bool, device=accelerator.device)
            prompt_hidden = evaluated.encode_prompt(prompt_latents, prompt_mask)
            phoneme_ids = torch.tensor([row[PHONEME_IDS]], device=accelerator.device)
            durations = torch.tensor([row[DURATIONS]], device=accelerator.device)
            phoneme_hidden = evaluated.encode_phonemes(phoneme_ids, torch.ones_like(phoneme_ids, dtype=torch.bool))
            frame_hidden, frame_mask = evaluated.length_regulate(phoneme_hidden, durations)
            prompt_pitch = prompt_pitch_statistics(torch.tensor([prompt_row[LOG_F0]]), torch.tensor([prompt_row[VOICED]]))
            predicted_log_f0 = evaluated.predict_pitch(frame_hidden, frame_mask, prompt_hidden, prompt_mask,
                                                             tuple(value.to(accelerator.device) for value in prompt_pitch))
            writer.add_figure(f"val/pitch_{index}", pitch_figure(
                row[LOG_F0], predicted_log_f0[0].cpu().numpy(), row["voiced"], title=row["id"]), step)

            generator = torch.Generator().manual_seed(recipe["seed"])
            audio = build_pipeline(evaluated)(row["text"], prompt_audio.numpy(), prompt_sampling_rate=sampling_rate,
                                     num_inference_steps=recipe["val_inference_steps"], generator=generator).audios[0]
            real = torch.from_numpy(audio_as_float(row["audio"]))
            mels = [mel_spectrogram(torch.as_tensor(wave), sampling_rate, hop_length=hop_length)[0].numpy()
                    for wave in (real, audio)]
            writer.add_figure(f"val/mel_{index}", mel_figure(*mels, title=f"{row['id']}: {row['text']}"), step)
            writer.add_audio(f"val/audio_{index}_generated", torch.as_tensor(audio).clamp(-1, 1), step, sample_rate=sampling_rate)
            writer.add_audio(f"val/audio_{index}_real", real, step, sample_rate=sampling_rate)

    @torch.no_grad()
    def log_objective_metrics(step, evaluated):
        """WER/SIM/... (ns2_hf.metrics) of pipeline syntheses of the first `val_objective_items` validation
        utterances, each prompted by another utterance of its speaker; off when `val_objective_metrics` is []."""
        from ns2_hf.metrics import EvaluationItem, evaluate_items, summarize

        rows, speakers = dataset["validation"], dataset["validation"]["speaker_id"]
        sampling_rate, items = codec.config.sampling_rate, []
        for index in range(min(recipe["val_objective_items"], len(rows))):
            row = rows[index]
            same_speaker = [i for i, speaker in enumerate(speakers) if speaker == speakers[index] and i != index]
            prompt = audio_as_float(rows[same_speaker[0] if same_speaker else index]["audio"])
            audio = build_pipeline(evaluated)(row["text"], prompt, prompt_sampling_rate=sampling_rate,
                                     num_inference_steps=recipe["val_inference_steps"],
                                     generator=torch.Generator().manual_seed(recipe["seed"])).audios[0]
            items.append(EvaluationItem(id=row["id"], text=row["text"], prompt=prompt, audio=audio,
                                        ground_truth=audio_as_float(row["audio"])))
        summary = summarize(evaluate_items(items, sampling_rate, metrics=recipe["val_objective_metrics"]))
        accelerator.log({f"val_objective/{name}": value["mean"] for name, value in summary.get("model", {}).items()},
                        step=step)

    @torch.no_grad()
    def validate(step):
        """Each process scores its share of the validation batches; the frame-weighted sums are added up
        across processes. Batch i draws its prompt cuts, times and noise from `seed + i`, so the numbers do not
        depend on the process count. Under FSDP each process evaluates a full copy of the EMA weights
        (`full_model_copy`)."""
        totals, frames = dict.fromkeys(LOSS_NAMES, 0.0), 0
        with ema_weights(ema, unwrapped_model.parameters()), \
                accelerator.split_between_processes(list(range(len(val_loader)))) as own_batches:
            evaluated = full_model_copy(accelerator, unwrapped_model).eval()
            for batch_index, batch in enumerate(val_loader):
                if batch_index not in own_batches:
                    continue
                generator = torch.Generator(device="cpu").manual_seed(recipe["seed"] + batch_index)
                val_prompter = NS2SpeechPrompter(recipe["prompt_min_ratio"], recipe["prompt_max_ratio"],
                                                 generator=generator, pad_token_id=config.pad_token_id)
                batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
                inputs = val_prompter(utterances_of(batch, codec))
                batch_size = inputs["latents"].shape[0]
                timesteps = noise_scheduler.sample_timesteps(batch_size, generator=generator)
                noise = torch.randn(inputs["latents"].shape, generator=generator)
                output = evaluated(**inputs, codebooks=codebooks, noise_scheduler=noise_scheduler,
                                   timesteps=timesteps.to(accelerator.device), noise=noise.to(accelerator.device))
                batch_frames = int(batch["num_frames"].sum())
                for name in LOSS_NAMES:
                    totals[name] += float(getattr(output, name)) * batch_frames
                frames += batch_frames
            summed = accelerator.reduce(torch.tensor([*totals.values(), frames], dtype=torch.float64,
                                                     device=accelerator.device), reduction="sum").tolist()
            totals = {name: value / summed[-1] for name, value in zip(LOSS_NAMES, summed)}
            accelerator.log({f"val/{name}": value for name, value in totals.items()}, step=step)
            writer = tensorboard_writer(accelerator)
            if writer is not None:
                log_examples(writer, step, evaluated)
            if recipe["val_objective_metrics"] and accelerator.is_main_process:
                log_objective_metrics(step, evaluated)
            if totals["loss"] < progress.best_val_loss:
                progress.best_val_loss = totals["loss"]
                if accelerator.is_main_process:
                    write_best(output_dir, build_pipeline(evaluated).save_pretrained, step, totals["loss"])
        unwrapped_model.train()
        accelerator.wait_for_everyone()

    # ---- training loop ---------------------------------------------------------------------------------------
    model.train()
    batches = batches_from(train_loader, batch_sampler, accelerator, progress.step * recipe["gradient_accumulation_steps"])
    bar = tqdm(total=recipe["max_steps"], initial=progress.step, disable=not accelerator.is_local_main_process, desc="ns2")
    start_time, window_seconds, window_frames = time.time(), 0.0, 0  # throughput counts training steps only
    while progress.step < recipe["max_steps"]:
        step_start = time.time()
        # load first (starting a data loader iterator draws from the RNG), then seed from the step alone:
        # dropout, t and noise are the same whether or not the run was resumed (the prompt cuts carry their batch's seed)
        step_batches = [next(batches) for _ in range(recipe["gradient_accumulation_steps"])]
        seed_step(recipe["seed"], progress.step)
        for batch in step_batches:
            with accelerator.accumulate(model):
                output = model(**latents_from_codes(batch, codec), codebooks=codebooks, noise_scheduler=noise_scheduler)
                accelerator.backward(output.loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), recipe["max_grad_norm"])
                optimizer.step()
                optimizer.zero_grad()
            window_frames += int(batch["latent_mask"].sum() + batch["prompt_mask"].sum())
        schedule.step()
        ema.step(unwrapped_model.parameters())
        progress.step += 1
        window_seconds += time.time() - step_start
        step = progress.step

        if step % recipe["log_interval"] == 0 or step == 1:
            frames_per_second = window_frames * accelerator.num_processes / window_seconds
            # the means over processes (the grad norm is the same on every one: the gradients are all-reduced)
            losses = mean_over_processes(accelerator, {name: getattr(output, name) for name in LOSS_NAMES})
            logs = {f"train/{name}": value for name, value in losses.items()}
            logs.update({"train/lr": schedule.get_last_lr()[0], "train/frames_per_second": frames_per_second})
            if grad_norm is not None:  # None under DeepSpeed, which clips by itself
                logs["train/grad_norm"] = float(grad_norm)
            accelerator.log(logs, step=step)
            bar.set_postfix(loss=f"{losses['loss']:.3f}", fps=f"{frames_per_second:.0f}")
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
