"""Measure the paper's other modes on voices the shipped model never trained on (issue 14's "done when").

    python benchmarks/eval_ns2_modes.py vc      [--strengths 0.4 0.6 0.8 1.0] [--steps 50] [--real] [--min_phone_frames 5]
    python benchmarks/eval_ns2_modes.py enhance [--strengths 0.6 0.8 1.0] [--snr 5] [--inversion ode] [--seed 0] [--bounds]
    python benchmarks/eval_ns2_modes.py sing
    (add --model FOLDER for another release folder, --out_dir DIR to keep the audio)

- **vc**: sources from `kok_mix5` (the speaker held out of training) converted to four training voices,
  and held-out sentences of those voices converted to `kok_mix5`. Reports SIM (Resemblyzer) of the output
  to the target prompt and to the source, and WER of its transcript against the source's text. `--real`
  uses real read speech instead (Debian `pocketsphinx-testdata`: one LibriVox reader, 5 sentences), as
  sources converted to training voices and as the target voice of corpus sources.
- **enhance**: held-out sentences mixed with white noise at `--snr` dB; the prompt is another clean
  recording of the speaker. Reports DNSMOS OVRL and WER of the noisy input and of the output; `--bounds` adds
  the WER of the model's text-to-speech of the same sentences, from nothing of the noisy source.
- **sing**: a 12-note melody (G3–E4, 0.45 s notes, 0.1 s rests) with one word per note, sung with a
  `kok_mix5` prompt. Reports the median error in cents of the output's f0 (parselmouth) against the
  notes, over the voiced frames of each note's middle half, and the voiced fraction of notes and rests.

One thread is enough: a conversion of 4 s at 50 steps takes about 4 s on one core.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ns2-offline-en"
UNSEEN_SPEAKER = "kok_mix5"
SEEN_SPEAKERS = ["piper_joe", "flite_slt", "kok_kumo", "fes_ked"]
# Sentences held out of the shipped model's training (its validation split: 3 per speaker).
HELD_OUT = {"piper_joe": 24, "flite_slt": 21, "kok_kumo": 6, "fes_ked": 1}
SONG = [(55, "sing"), (57, "a"), (59, "song"), (60, "of"), (62, "light"), (64, "and"),
        (62, "day"), (60, "we"), (59, "go"), (57, "on"), (55, "our"), (55, "way")]


def corpus_text() -> dict:
    with open(CORPUS / "metadata.csv", encoding="utf-8") as handle:
        return {row["file_name"].split("/")[-1].rsplit(".", 1)[0]: row["text"] for row in csv.DictReader(handle)}


LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def read(utterance: str) -> np.ndarray:
    """A corpus utterance by id, or a LibriVox one (`librivox_0870`)."""
    if utterance.startswith("librivox_"):
        path = LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{utterance.split('_')[1]}.wav"
    else:
        path = CORPUS / "audio" / f"{utterance}.flac"
    audio, _ = sf.read(path, dtype="float32")
    return audio


def librivox_text() -> dict:
    """Transcripts of the LibriVox test sentences, by `librivox_<number>`."""
    texts = {}
    for line in (LIBRIVOX / "transcription").read_text(encoding="utf-8").splitlines():
        words, file_id = line.rsplit("(", 1)
        texts[f"librivox_{file_id.rstrip(')').rsplit('-', 1)[1]}"] = words.replace("<s>", "").replace("</s>", "").strip()
    return texts


def vc_items(real: bool = False) -> list:
    """(source id, target prompt id) pairs: unseen → seen voices, then seen → the unseen voice."""
    if real:
        items = [(f"librivox_{n}", f"{speaker}_0040") for n, speaker in zip(("0870", "0880", "0890", "0930"), SEEN_SPEAKERS)]
        return items + [(f"{UNSEEN_SPEAKER}_{3 + index:04d}", "librivox_0920") for index in range(2)] + [
            (f"{speaker}_{HELD_OUT[speaker]:04d}", "librivox_0920") for speaker in SEEN_SPEAKERS[:2]]
    items = [(f"{UNSEEN_SPEAKER}_{3 + index:04d}", f"{speaker}_0040") for index, speaker in enumerate(SEEN_SPEAKERS)]
    items += [(f"{speaker}_{HELD_OUT[speaker]:04d}", f"{UNSEEN_SPEAKER}_0040") for speaker in SEEN_SPEAKERS]
    return items


def evaluate_vc(args, texts) -> dict:
    from ns2_hf.metrics.asr import transcribe, word_error_rate
    from ns2_hf.metrics.speaker import speaker_similarity
    from ns2_hf.pipelines import NS2VoiceConversionPipeline

    pipe = NS2VoiceConversionPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    results = {}
    for strength in args.strengths:
        rows = []
        for source, target in vc_items(args.real):
            output = pipe(read(source), read(target), transcript=texts[source], source_sampling_rate=16000,
                          prompt_sampling_rate=16000, strength=strength, num_inference_steps=args.steps,
                          **phone_floor(args))
            audio = output.audios[0]
            save(args, f"vc_{strength}_{source}_to_{target}", audio)
            rows.append({
                "source": source, "target": target,
                "sim_target": speaker_similarity(audio, read(target), 16000),
                "sim_source": speaker_similarity(audio, read(source), 16000),
                "hypothesis": transcribe(audio, 16000), "reference": texts[source],
            })
        results[strength] = summarize(rows, word_error_rate)
        print(json.dumps({"strength": strength, **results[strength]["summary"]}), flush=True)
    return results


def phone_floor(args) -> dict:
    """`--min_phone_frames` as a pipeline keyword (none: the pipeline's default)."""
    return {} if args.min_phone_frames is None else {"min_phone_frames": args.min_phone_frames}


def mix_noise(clean: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """`clean` plus white Gaussian noise at `snr_db` (power ratio over the whole clip)."""
    noise = np.random.default_rng(seed).standard_normal(clean.shape).astype(np.float32)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean + noise


def evaluate_enhancement(args, texts) -> dict:
    from ns2_hf.metrics.asr import transcribe, word_error_rate
    from ns2_hf.metrics.mos import dnsmos
    from ns2_hf.pipelines import NS2SpeechEnhancementPipeline

    pipe = NS2SpeechEnhancementPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    sources = [f"{UNSEEN_SPEAKER}_{3 + index:04d}" for index in range(4)] + [f"{s}_{n:04d}" for s, n in HELD_OUT.items()]
    noisy = {source: mix_noise(read(source), args.snr, seed) for seed, source in enumerate(sources)}
    input_rows = [{"dnsmos": dnsmos(noisy[s], 16000)["dnsmos_ovrl"], "hypothesis": transcribe(noisy[s], 16000),
                   "reference": texts[s]} for s in sources]
    clean_rows = [{"dnsmos": dnsmos(read(s), 16000)["dnsmos_ovrl"], "hypothesis": transcribe(read(s), 16000),
                   "reference": texts[s]} for s in sources]
    results = {"noisy_input": summarize(input_rows, word_error_rate), "clean_input": summarize(clean_rows, word_error_rate)}
    print(json.dumps({key: results[key]["summary"] for key in results}), flush=True)
    for strength in args.strengths:
        rows = []
        for source in sources:
            prompt = source.rsplit("_", 1)[0] + "_0040"
            audio = pipe(noisy[source], read(prompt), transcript=texts[source], noisy_sampling_rate=16000,
                         prompt_sampling_rate=16000, strength=strength, num_inference_steps=args.steps,
                         inversion=args.inversion, generator=torch.Generator().manual_seed(args.seed),
                         **phone_floor(args)).audios[0]
            save(args, f"enhance_{strength}_{source}", audio)
            rows.append({"dnsmos": dnsmos(audio, 16000)["dnsmos_ovrl"], "hypothesis": transcribe(audio, 16000),
                         "reference": texts[source]})
        results[strength] = summarize(rows, word_error_rate)
        print(json.dumps({"strength": strength, **results[strength]["summary"]}), flush=True)
    if args.bounds:
        results.update(enhancement_bounds(args, pipe, sources, texts))
    return results


def enhancement_bounds(args, pipe, sources, texts) -> dict:
    """What the model says from the transcript and the clean prompt with nothing of the noisy source: its own
    predicted durations (no phone floor) and pitch (`tts`), and the durations the aligner finds on the *clean* recording with the pitch
    predictor's contour (`tts_clean_durations`). An enhancement keeps the source's timing, so the second is the
    most it could do with a perfect aligner and without the source's pitch."""
    from ns2_hf.metrics.asr import transcribe, word_error_rate
    from ns2_hf.pipelines import NS2Pipeline

    tts = NS2Pipeline.from_pipe(pipe)
    results = {}
    for name in ("tts", "tts_clean_durations"):
        rows = []
        for source in sources:
            durations = None
            if name == "tts_clean_durations":
                phoneme_ids, _ = pipe.encode_text([texts[source]])
                durations = [pipe.align_source(phoneme_ids, read(source))[0].cpu()]
            audio = tts(texts[source], read(source.rsplit("_", 1)[0] + "_0040"), prompt_sampling_rate=16000,
                        durations=durations, min_phone_frames=1, num_inference_steps=args.steps,
                        generator=torch.Generator().manual_seed(args.seed)).audios[0]
            save(args, f"enhance_{name}_{source}", audio)
            rows.append({"hypothesis": transcribe(audio, 16000), "reference": texts[source]})
        results[name] = summarize(rows, word_error_rate)
        print(json.dumps({"bound": name, **results[name]["summary"]}), flush=True)
    return results


def song_midi(path: str) -> None:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    voice = pretty_midi.Instrument(program=0)
    for index, (pitch, _) in enumerate(SONG):
        voice.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=0.55 * index, end=0.55 * index + 0.45))
    midi.instruments.append(voice)
    midi.write(path)


def note_pitch_errors(audio: np.ndarray, conditions, sampling_rate: int, hop_length: int) -> dict:
    """Cents error of the f0 over each note's middle half (voiced frames), and voicing in notes and rests.

    The tracker searches half an octave around the score's range: the tiny codec buzzes at its frame rate
    (80 Hz), which an unbounded search often reports as the pitch."""
    from ns2_hf.audio import extract_pitch

    f0_min, f0_max = conditions.note_frequencies.min() / 2**0.5, conditions.note_frequencies.max() * 2**0.5
    log_f0, voiced = extract_pitch(audio, sampling_rate, hop_length, num_frames=int(conditions.f0.shape[0]),
                                   f0_min=f0_min, f0_max=f0_max)
    cents, in_note = [], np.zeros(voiced.shape, dtype=bool)
    for (start, end), frequency in zip(conditions.note_frames, conditions.note_frequencies):
        in_note[start:end] = True
        quarter = (end - start) // 4
        middle = slice(start + quarter, end - quarter)
        sung = voiced[middle]
        cents.extend(1200 * np.log2(np.exp(log_f0[middle][sung]) / frequency))
    return {
        "median_abs_cents": float(np.median(np.abs(cents))) if cents else float("nan"),
        "voiced_in_notes": float(voiced[in_note].mean()),
        "voiced_in_rests": float(voiced[~in_note].mean()) if (~in_note).any() else float("nan"),
    }


def evaluate_singing(args, texts) -> dict:
    from ns2_hf.pipelines import NS2Pipeline
    from ns2_hf.singing import load_score

    pipe = NS2Pipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    path = os.path.join(args.out_dir or "/tmp", "eval_song.mid")
    song_midi(path)
    conditions = load_score(path, pipe.tokenizer, pipe.sampling_rate / pipe.hop_length, lyrics=[word for _, word in SONG])
    results = {}
    for prompt in [f"{UNSEEN_SPEAKER}_0040", "flite_slt_0040"]:
        audio = pipe(conditions.text, read(prompt), prompt_sampling_rate=16000, durations=[conditions.durations],
                     pitch=[conditions.f0], num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0)).audios[0]
        save(args, f"sing_{prompt}", audio)
        results[prompt] = note_pitch_errors(audio, conditions, pipe.sampling_rate, pipe.hop_length)
        print(json.dumps({"prompt": prompt, **results[prompt]}), flush=True)
    return results


def summarize(rows: list, word_error_rate) -> dict:
    summary = {"wer": word_error_rate([r["hypothesis"] for r in rows], [r["reference"] for r in rows])}
    for key in ("sim_target", "sim_source", "dnsmos"):
        if key in rows[0]:
            summary[key] = float(np.mean([r[key] for r in rows]))
    if "sim_target" in rows[0]:
        summary["target_closer"] = float(np.mean([r["sim_target"] > r["sim_source"] for r in rows]))
    return {"summary": summary, "rows": rows}


def save(args, name: str, audio: np.ndarray) -> None:
    if args.out_dir:
        sf.write(os.path.join(args.out_dir, f"{name}.wav"), audio, 16000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["vc", "enhance", "sing"])
    parser.add_argument("--model", default=None, help="release folder (default: the shipped ns2-tiny-en)")
    parser.add_argument("--strengths", type=float, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--snr", type=float, default=5.0)
    parser.add_argument("--real", action="store_true", help="vc: real LibriVox speech as sources and target voice")
    parser.add_argument("--min_phone_frames", type=int, default=None,
                        help="vc/enhance: the pipelines' floor on the source's phone durations (default: theirs, 1 / 5)")
    parser.add_argument("--seed", type=int, default=0, help="enhance: the seed of the fresh noise (and of --bounds)")
    parser.add_argument("--bounds", action="store_true",
                        help="enhance: also the model's text-to-speech from the transcript and clean prompt (its own "
                             "durations; the clean recording's)")
    parser.add_argument("--inversion", choices=["noise", "ode"], default="noise", help="enhance: how the source reaches t_s")
    parser.add_argument("--out_dir", default=None, help="keep the audio and the JSON results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    texts = corpus_text()
    if LIBRIVOX.is_dir():
        texts.update(librivox_text())
    if args.mode == "vc":
        args.strengths = args.strengths or [0.6]
        results = evaluate_vc(args, texts)
    elif args.mode == "enhance":
        args.strengths = args.strengths or [0.8]
        results = evaluate_enhancement(args, texts)
    else:
        results = evaluate_singing(args, texts)
    if args.out_dir:
        with open(os.path.join(args.out_dir, f"{args.mode}.json"), "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
