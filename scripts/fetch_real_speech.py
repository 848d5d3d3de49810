"""Collect real recorded speech that installs offline from Debian, for codec training and evaluation.

    python scripts/fetch_real_speech.py [--output_dir data/real_speech] [--klettres]

Installs the Debian packages `codec2-examples` (about 8 speakers reading Harvard sentences, mostly
8 kHz, LGPL-2.1) and `pocketsphinx-testdata` (5 LibriVox utterances of one reader with transcripts,
16 kHz, public domain) when missing and run as root, then writes, resampled to 16 kHz mono WAV:

    OUTPUT/train/            codec2 recordings for codec training (untranscribed)
    OUTPUT/train/klettres/LANGUAGE/   with --klettres: the letters and syllables that native speakers of 20
                             languages recorded for KLettres (Debian `klettres-data`, GPL-2+; 44.1 kHz, about
                             1,800 clips, 39 minutes after trimming the silence): 20 more real voices for the
                             codec, which needs no transcripts (isolated sounds, not running speech)
    OUTPUT/test/codec2/      other codec2 recordings, never trained on (codec evaluation, --audio_dir)
    OUTPUT/test/librivox/    the LibriVox utterances, never trained on
    OUTPUT/test_list.jsonl   a test list of the LibriVox utterances for training/evaluate_tts.py: text,
                             ground truth, a prompt of the same reader, a codec2 prompt of another speaker
    OUTPUT/tuning/pocketsphinx/  pocketsphinx's other real recordings (two speakers: the digits and commands
                             `goforward`, `numbers`, `something`; the card names `cards/00N`), never trained on
    OUTPUT/real_tuning_list.jsonl  a tuning list with those recordings as prompts (5 prompts x 2 Harvard sentences,
                             the other speaker as the similarity floor, no ground truth): for choosing inference
                             settings on real prompts, disjoint from both test lists
    OUTPUT/codec2_prompt_list.jsonl  a test list with each held-out codec2 speaker as the prompt (7 real
                             voices, mean f0 115–305 Hz; LibriVox texts, no ground truth, another codec2
                             speaker as the similarity floor): does the output take the prompt's pitch range

Nothing is downloaded from anywhere but the Debian archive; the files are not committed (data/ is
ignored). The codec2 files that are themselves codec output (`*2400.wav`) or concatenations of the
others (`all.wav`) are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ns2_hf.audio.io import load_audio  # noqa: E402

SAMPLING_RATE = 16000
CODEC2_DIR = Path("/usr/share/codec2")
LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
KLETTRES_DIR = Path("/usr/share/klettres")
POCKETSPHINX_DIR = LIBRIVOX_DIR.parent
# the real tuning list's prompts: (file, speaker); the .raw files are 16 kHz 16-bit little-endian PCM.
TUNING_PROMPTS = (("numbers.raw", "A"), ("something.raw", "A"), ("goforward.raw", "A"), ("cards/005.wav", "B"),
                  ("cards/002.wav", "B"))
# Harvard sentences, list 2 (IEEE 1969), spoken by the tuning list
TUNING_TEXTS = (
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
)
# codec2 speakers held out for evaluation (short Harvard-sentence clips); the long ones train the codec.
CODEC2_TEST = ("hts1a", "hts2a", "forig", "morig", "mmt1", "cross", "big_dog")
CODEC2_TRAIN = ("ve9qrp", "david4", "vk2tpm_004", "vk5qi")


def install_packages(packages: dict) -> None:
    """apt-get those of `packages` (`{package: folder it installs}`) whose folder is missing (root only)."""
    missing = [package for package, folder in packages.items() if not folder.is_dir()]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SystemExit(f"install the Debian packages {' '.join(missing)} (as root: apt-get install {' '.join(missing)}).")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def write_wav(source: Path, target: Path) -> Path:
    """`source` resampled to 16 kHz mono, written as 16-bit WAV at `target`."""
    waveform = load_audio(str(source), target_sampling_rate=SAMPLING_RATE, name=str(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, np.asarray(waveform, dtype=np.float32), SAMPLING_RATE, subtype="PCM_16")
    return target


def write_klettres(output: Path) -> int:
    """Every KLettres recording with its leading and trailing silence trimmed (librosa: 32 ms frames 40 dB below the loudest),
    16 kHz mono, as `output/LANGUAGE/KIND_NAME.wav`; returns how many were written."""
    import librosa

    written = 0
    for source in sorted(KLETTRES_DIR.glob("*/*/*.ogg")):  # LANGUAGE/{alpha,syllab}/NAME.ogg
        waveform = load_audio(str(source), target_sampling_rate=SAMPLING_RATE, name=str(source))
        trimmed, _ = librosa.effects.trim(waveform, top_db=40, frame_length=512, hop_length=128)
        if len(trimmed) < SAMPLING_RATE // 10:  # nothing but a click
            continue
        target = output / source.parts[-3] / f"{source.parts[-2]}_{source.stem}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, np.asarray(trimmed, dtype=np.float32), SAMPLING_RATE, subtype="PCM_16")
        written += 1
    return written


def write_tuning_prompts(output: Path) -> list:
    """pocketsphinx's other recordings (`TUNING_PROMPTS`) as 16 kHz WAV under `output`; returns their paths."""
    paths = []
    for name, _ in TUNING_PROMPTS:
        source, target = POCKETSPHINX_DIR / name, output / name.replace("/", "_").replace(".raw", ".wav")
        if source.suffix == ".raw":
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, np.fromfile(source, dtype="<i2"), SAMPLING_RATE, subtype="PCM_16")
        else:
            write_wav(source, target)
        paths.append(target)
    return paths


def librivox_transcripts() -> dict:
    """`{utterance id: text}` from pocketsphinx's `transcription` file (`<s> text </s> (id)` lines)."""
    transcripts = {}
    for line in (LIBRIVOX_DIR / "transcription").read_text().splitlines():
        if "(" not in line:
            continue
        text, utterance = line.rsplit("(", 1)
        transcripts[utterance.strip(" )")] = text.replace("<s>", "").replace("</s>", "").strip()
    return transcripts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="data/real_speech")
    parser.add_argument("--klettres", action="store_true",
                        help="also write KLettres' recordings of 20 languages' speakers for codec training")
    args = parser.parse_args(argv)
    output = Path(args.output_dir)
    packages = {"codec2-examples": CODEC2_DIR, "pocketsphinx-testdata": LIBRIVOX_DIR}
    install_packages({**packages, "klettres-data": KLETTRES_DIR} if args.klettres else packages)
    for name in CODEC2_TRAIN:
        write_wav(CODEC2_DIR / "wav" / f"{name}.wav", output / "train" / f"codec2_{name}.wav")
    write_wav(CODEC2_DIR / "raw" / "speech_orig_16k.wav", output / "train" / "codec2_speech_orig_16k.wav")
    others = [write_wav(CODEC2_DIR / "wav" / f"{name}.wav", output / "test" / "codec2" / f"{name}.wav") for name in CODEC2_TEST]
    transcripts = librivox_transcripts()
    utterances = sorted(transcripts)
    paths = {u: write_wav(LIBRIVOX_DIR / f"{u}.wav", output / "test" / "librivox" / f"{u}.wav") for u in utterances}
    rows = []
    for index, utterance in enumerate(utterances):
        prompt = utterances[(index + 1) % len(utterances)]  # another utterance of the same reader
        rows.append({
            "id": utterance,
            "text": transcripts[utterance],
            "audio": os.path.relpath(paths[utterance], output),
            "prompt_audio": os.path.relpath(paths[prompt], output),
            "other_prompt_audio": os.path.relpath(others[index % len(others)], output),
            "speaker": "librivox_austen",
        })
    prompt_rows = [
        {
            "id": f"codec2_{name}",
            "text": transcripts[utterances[index % len(utterances)]],
            "prompt_audio": os.path.relpath(others[index], output),
            "other_prompt_audio": os.path.relpath(others[(index + 3) % len(others)], output),
            "speaker": f"codec2_{name}",
        }
        for index, name in enumerate(CODEC2_TEST)
    ]
    tuning_paths = write_tuning_prompts(output / "tuning" / "pocketsphinx")
    speakers = [speaker for _, speaker in TUNING_PROMPTS]
    other_speaker_prompt = {speaker: next(path for path, other in zip(tuning_paths, speakers) if other != speaker)
                            for speaker in speakers}  # the floor: the other speaker's first prompt
    tuning_rows = [
        {
            "id": f"pocketsphinx_{path.stem}_{repeat}",
            "text": TUNING_TEXTS[2 * index + repeat],
            "prompt_audio": os.path.relpath(path, output),
            "other_prompt_audio": os.path.relpath(other_speaker_prompt[speakers[index]], output),
            "speaker": f"pocketsphinx_{speakers[index]}",
        }
        for index, path in enumerate(tuning_paths)
        for repeat in range(2)
    ]
    for name, list_rows in (("test_list.jsonl", rows), ("codec2_prompt_list.jsonl", prompt_rows),
                            ("real_tuning_list.jsonl", tuning_rows)):
        with open(output / name, "w", encoding="utf-8") as handle:
            for row in list_rows:
                handle.write(json.dumps(row) + "\n")
    if args.klettres:
        print(f"wrote {write_klettres(output / 'train' / 'klettres')} KLettres recordings to {output / 'train' / 'klettres'}")
    print(f"wrote {len(CODEC2_TRAIN) + 1} training and {len(others) + len(utterances)} test recordings, "
          f"{output / 'test_list.jsonl'} ({len(rows)} items), {output / 'codec2_prompt_list.jsonl'} "
          f"({len(prompt_rows)} items), {output / 'real_tuning_list.jsonl'} ({len(tuning_rows)} items)")


if __name__ == "__main__":
    main()
