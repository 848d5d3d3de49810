"""Assemble a release `NS2Pipeline` folder from a trained NS2 pipeline (`train_ns2.py`'s `best`), an
optionally fine-tuned codec decoder and the sampling temperature chosen on a tuning list.

    python training/assemble_pipeline.py --ns2 runs/ns2_small/best \\
        --codec runs/codec_small_decoder/best --temperature 25 --output pretrained/ns2-tiny-en

`--codec` replaces the pipeline's codec. NS2 generates latents of the codec it was trained with, so
the new codec must have the same encoder and codebooks (as `train_codec.py` with
`train_only: decoder` guarantees); its decoder may be of another kind (e.g. the Fourier decoder of
`codec_cpu_fourier_decoder.yaml`); anything else is refused. `--temperature` sets τ of the
initial noise N(0, τ⁻¹ I) in the saved scheduler (the paper's 1.44 is the default), `--min_phone_frames` the
pipeline's default floor on phone durations in the model's config (1, the paper's, by default),
`--pitch_register_tolerance` the pipeline's default bound on the distance between the output's register and the
prompt's (`none`, the paper's predicted pitch, by default), `--spectrum_matching` how far the output's long-term
spectrum is equalised towards the prompt's by default (0, off, the paper's, by default), `--num_candidates` how many
samples the pipeline draws per waveform by default for its aligner to choose from (1, the paper's, by default),
`--candidate_steps` the solver steps of the drafts it chooses on (`none`, every candidate in full, by default). The
`ns2` folder's aligner (its `aligner/` subfolder) goes with it. The output folder is swapped in whole (an interrupted
run leaves the previous folder); files in it that are not pipeline components (a README.md) are kept.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Optional, Union

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from ns2_hf.codec import NS2CodecModel  # noqa: E402
from ns2_hf.ns2 import NS2Config  # noqa: E402
from ns2_hf.pipelines import NS2Pipeline  # noqa: E402
from ns2_hf.schedulers import NS2Scheduler  # noqa: E402
from training.trainer_utils import write_folder_atomically  # noqa: E402


def check_same_latent_space(trained_with: NS2CodecModel, replacement: NS2CodecModel) -> None:
    """Raise unless `replacement` encodes to exactly the latents and codes of `trained_with`: every
    weight and buffer outside the decoder must be equal."""
    if trained_with.config.latent_space() != replacement.config.latent_space():
        raise ValueError("the codec's encoder or quantizer config differs from the one the NS2 model was trained with.")
    expected, given = trained_with.state_dict(), replacement.state_dict()
    differing = sorted(
        name for name in expected if not name.startswith("decoder.") and not torch.equal(expected[name], given[name])
    )
    if differing:
        raise ValueError(
            f"the codec's encoder/codebooks differ from the ones the NS2 model was trained with ({len(differing)} "
            f"tensors, e.g. {differing[0]}): its latents would not match. Fine-tune the decoder alone "
            "(train_codec.py with train_only: decoder) or retrain NS2 on this codec's codes."
        )


def assemble(ns2: str, output: str, codec: Optional[str] = None, temperature: Optional[float] = None,
             min_phone_frames: Optional[int] = None, pitch_register_tolerance: Union[float, str, None] = None,
             spectrum_matching: Optional[float] = None, num_candidates: Optional[int] = None,
             candidate_steps: Union[int, str, None] = None) -> NS2Pipeline:
    """Load the pipeline in `ns2`, swap in `codec`, `temperature`, `min_phone_frames`, `pitch_register_tolerance`
    (`"none"` clears it), `spectrum_matching`, `num_candidates` and `candidate_steps` (`"none"` clears it), write it
    to `output`; returns it."""
    pipeline = NS2Pipeline.from_pretrained(ns2)
    if min_phone_frames is not None:
        pipeline.model.config.min_phone_frames = NS2Config(min_phone_frames=min_phone_frames).min_phone_frames  # checked
    if pitch_register_tolerance is not None:
        tolerance = None if pitch_register_tolerance == "none" else float(pitch_register_tolerance)
        pipeline.model.config.pitch_register_tolerance = NS2Config(pitch_register_tolerance=tolerance).pitch_register_tolerance
    if spectrum_matching is not None:
        pipeline.model.config.spectrum_matching = NS2Config(spectrum_matching=spectrum_matching).spectrum_matching  # checked
    if num_candidates is not None:
        pipeline.model.config.num_candidates = NS2Config(num_candidates=num_candidates).num_candidates  # checked
    if candidate_steps is not None:
        steps = None if candidate_steps == "none" else int(candidate_steps)
        pipeline.model.config.candidate_steps = NS2Config(candidate_steps=steps).candidate_steps  # checked
    if codec is not None:
        replacement = NS2CodecModel.from_pretrained(codec).eval()
        check_same_latent_space(pipeline.codec, replacement)
        pipeline.register_modules(codec=replacement)
    if temperature is not None:
        pipeline.register_modules(scheduler=NS2Scheduler.from_config(pipeline.scheduler.config, temperature=temperature))

    output = Path(output)
    components = set(pipeline.components) | {"model_index.json"}
    kept = [path for path in output.iterdir() if path.name not in components] if output.is_dir() else []

    def write(folder: Path) -> None:
        pipeline.save_pretrained(folder)
        index = json.loads((folder / "model_index.json").read_text())
        index.pop("_name_or_path", None)  # a path on the machine that assembled it, meaningless elsewhere
        (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        for path in kept:
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, folder / path.name)

    write_folder_atomically(output, write)
    return pipeline


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns2", required=True, help="a trained NS2Pipeline folder (train_ns2.py's output_dir/best)")
    parser.add_argument("--codec", help="an NS2CodecModel folder to use instead (same encoder and codebooks)")
    parser.add_argument("--temperature", type=float, help="τ of the initial noise saved in the scheduler")
    parser.add_argument("--min_phone_frames", type=int,
                        help="the least frames the pipeline gives a phone by default, saved in the model's config")
    parser.add_argument("--pitch_register_tolerance",
                        help="keep the output's mean f0 within this fraction of the prompt's by default (e.g. 0.1), saved in "
                             "the model's config; none = the predicted pitch")
    parser.add_argument("--spectrum_matching", type=float,
                        help="how far (0 to 1) the output's long-term spectrum is equalised towards the prompt's by default, "
                             "saved in the model's config")
    parser.add_argument("--num_candidates", type=int,
                        help="samples drawn per waveform by default, of which the folder's aligner keeps the one that says "
                             "the text most clearly; saved in the model's config")
    parser.add_argument("--candidate_steps",
                        help="solver steps of the candidates' drafts, on which the aligner chooses before the chosen one "
                             "is sampled in full, by default; saved in the model's config; none = every candidate in full")
    parser.add_argument("--output", required=True, help="the release folder to write (replaced whole)")
    args = parser.parse_args(argv)
    assemble(args.ns2, args.output, args.codec, args.temperature, args.min_phone_frames, args.pitch_register_tolerance,
             args.spectrum_matching, args.num_candidates, args.candidate_steps)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
