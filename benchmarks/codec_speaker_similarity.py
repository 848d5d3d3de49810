"""How much of a voice the codec keeps: speaker similarity (Resemblyzer) of each test-list row's recording and
of its codec resynthesis to the row's prompt and to another speaker's recording (the floor).

    OMP_NUM_THREADS=1 python benchmarks/codec_speaker_similarity.py --codec pretrained/ns2-tiny-en/codec \
        --test-list data/real_speech/test_list.jsonl data/real_speech/codec2_prompt_list.jsonl runs/eval/kok_mix5.jsonl

The recording is the row's `audio` (another utterance of the prompt's speaker); a row without one (the codec2
list: one recording per speaker) uses the prompt itself, whose own similarity is then 1. The resynthesis uses the
harmonic phase at the recording's own pitch, as the release decodes (`ns2_hf.codec.resynthesize`). A model that
generates in this codec's latent space cannot be nearer the prompt than the resynthesis of a real recording of it.
`unquantized_to_prompt` decodes the encoder's continuous latents instead, bypassing the RVQ: whether the voice is lost
in the quantizer or in the encoder and decoder. `equalised_to_prompt` passes the resynthesis through the pipeline's
`spectrum_matching=1` equaliser towards the prompt's long-term spectrum (`ns2_hf.audio.spectrum`): how much of the
distance is the codec's colouring of the spectrum.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from evaluate_tts import read_test_list  # noqa: E402

from ns2_hf.audio.io import load_audio  # noqa: E402
from ns2_hf.audio.spectrum import long_term_spectrum, match_long_term_spectrum  # noqa: E402
from ns2_hf.codec import NS2CodecModel, resynthesize  # noqa: E402
from ns2_hf.metrics.speaker import speaker_similarity  # noqa: E402


def list_similarities(codec: NS2CodecModel, test_list: str) -> dict:
    """Mean SIM of recording and resynthesis to the prompt and to the other speaker over the list's rows."""
    rate, harmonic = codec.config.sampling_rate, codec.config.decoder_type == "fourier"
    sums = {"recording_to_prompt": [], "resynthesis_to_prompt": [], "unquantized_to_prompt": [], "equalised_to_prompt": [],
            "recording_to_other": [],
            "resynthesis_to_other": []}
    for row in read_test_list(test_list):
        prompt = load_audio(row["prompt_audio"], target_sampling_rate=rate)
        recording = load_audio(row.get("audio") or row["prompt_audio"], target_sampling_rate=rate)
        resynthesis = resynthesize(codec, recording, harmonic_phase=harmonic)
        unquantized = resynthesize(codec, recording, harmonic_phase=harmonic, quantized=False)
        sums["recording_to_prompt"].append(speaker_similarity(recording, prompt, rate))
        sums["resynthesis_to_prompt"].append(speaker_similarity(resynthesis, prompt, rate))
        sums["unquantized_to_prompt"].append(speaker_similarity(unquantized, prompt, rate))
        equalised = match_long_term_spectrum(torch.as_tensor(resynthesis), long_term_spectrum(torch.from_numpy(prompt), rate), rate)
        sums["equalised_to_prompt"].append(speaker_similarity(equalised.numpy(), prompt, rate))
        if row.get("other_prompt_audio"):
            other = load_audio(row["other_prompt_audio"], target_sampling_rate=rate)
            sums["recording_to_other"].append(speaker_similarity(recording, other, rate))
            sums["resynthesis_to_other"].append(speaker_similarity(resynthesis, other, rate))
    return {"items": len(sums["recording_to_prompt"]), **{key: round(float(np.mean(v)), 3) for key, v in sums.items() if v}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", default="pretrained/ns2-tiny-en/codec", help="an NS2CodecModel folder")
    parser.add_argument("--test-list", nargs="+", required=True, help="evaluate_tts.py test lists")
    args = parser.parse_args()
    codec = NS2CodecModel.from_pretrained(args.codec).eval()
    for test_list in args.test_list:
        print(json.dumps({"test_list": test_list, **list_similarities(codec, test_list)}), flush=True)


if __name__ == "__main__":
    main()
