"""Ablation: give the generated codec latents the prompt's per-channel statistics (AdaIN on the latents) before
decoding, and score the result with the evaluation command (training/README.md, "Prompt guidance").

    OMP_NUM_THREADS=1 python benchmarks/prompt_latent_statistics.py --alpha 1.0 --mode meanstd -- \
        --model pretrained/ns2-tiny-en --test-list data/real_speech/test_list.jsonl --steps 50 --seed 0 \
        --metrics wer,speaker_similarity,prosody --out_dir runs/eval/latent_stats_librivox

For each item, the denoised latents z `(latent_dim, frames)` (normalised space) become
`(1 − alpha) · z + alpha · ((z − mean(z)) / std(z) · std(p) + mean(p))` with `p` the prompt's normalised latents
and the statistics per channel over frames (`--mode mean`: only the means are moved). `--mode knn` replaces each
frame instead by the mean of its `--k` nearest prompt frames (cosine similarity of the normalised latents; kNN-VC,
Baas et al. 2023, on the codec latents): `(1 − alpha) · z + alpha · knn(z)`. Everything after the `--` is
`training/evaluate_tts.py`'s arguments; the pipeline is patched in this process only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ns2_hf.pipelines import NS2Pipeline, NS2Voice


def nearest_prompt_frames(z, prompt, k: int):
    """`(latent_dim, frames)`: each frame of `z` replaced by the mean of its `k` nearest frames of `prompt`
    `(latent_dim, prompt_frames)` by cosine similarity."""
    import torch

    similarity = torch.nn.functional.normalize(z, dim=0).T @ torch.nn.functional.normalize(prompt, dim=0)
    nearest = similarity.topk(min(k, prompt.shape[1]), dim=1).indices  # (frames, k)
    return prompt[:, nearest].mean(dim=2)


def patch_pipeline(alpha: float, mode: str, k: int = 4) -> None:
    """Wrap `NS2Pipeline.encode_prompt` (remember the prompt's normalised latents) and `decode_latents` (move the
    latents' statistics towards them)."""
    encode_prompt, decode_latents = NS2Pipeline.encode_prompt, NS2Pipeline.decode_latents

    def remembering_encode_prompt(self, prompt, batch_size):
        if isinstance(prompt, np.ndarray):
            prompt = self._encode_waveform(prompt)
        voice = prompt if isinstance(prompt, NS2Voice) else prompt[0]  # the evaluation speaks one item at a time
        self._prompt_statistics_latents = self.model.normalize_latents(voice.prompt_latents.float())
        return encode_prompt(self, prompt, batch_size)

    def moved_decode_latents(self, latents, frame_mask, f0=None, voiced=None):
        prompt = self._prompt_statistics_latents
        moved = latents.clone()
        for index, num_frames in enumerate(frame_mask.sum(dim=1).tolist()):
            z = latents[index, :, :num_frames]
            if mode == "knn":
                moved[index, :, :num_frames] = (1 - alpha) * z + alpha * nearest_prompt_frames(z, prompt, k)
                continue
            centred = z - z.mean(1, keepdim=True)
            if mode == "meanstd":
                centred = centred / z.std(1, keepdim=True) * prompt.std(1, keepdim=True)
            moved[index, :, :num_frames] = (1 - alpha) * z + alpha * (centred + prompt.mean(1, keepdim=True))
        return decode_latents(self, moved, frame_mask, f0, voiced)

    NS2Pipeline.encode_prompt = remembering_encode_prompt
    NS2Pipeline.decode_latents = moved_decode_latents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, default=1.0, help="0 = the model's latents, 1 = the prompt's statistics")
    parser.add_argument("--mode", choices=("mean", "meanstd", "knn"), default="meanstd")
    parser.add_argument("--k", type=int, default=4, help="--mode knn: prompt frames averaged per frame")
    parser.add_argument("evaluate_args", nargs=argparse.REMAINDER, help="-- then training/evaluate_tts.py's arguments")
    args = parser.parse_args()
    patch_pipeline(args.alpha, args.mode, args.k)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    import evaluate_tts

    evaluate_tts.main([argument for argument in args.evaluate_args if argument != "--"])


if __name__ == "__main__":
    main()
