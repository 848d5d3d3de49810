"""Generic diffusers loading of an NS2 pipeline folder, and the shipped model inside an installed wheel."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

from ns2_hf import NS2Pipeline
from ns2_hf.pipelines import build_untrained_pipeline

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_diffusion_pipeline_from_pretrained_loads_an_ns2_folder(tmp_path):
    """diffusers' generic loader rebuilds the same pipeline (same speech, bit for bit) and honours `dtype`.
    The bf16 copy is only checked to run: its rounded duration predictor may choose other lengths, and which
    depends on the CPU's bf16 kernels."""
    pipe = build_untrained_pipeline("tiny", seed=0)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "pipe")
    loaded_bf16 = DiffusionPipeline.from_pretrained(tmp_path / "pipe", dtype=torch.bfloat16)
    assert isinstance(loaded, NS2Pipeline) and isinstance(loaded_bf16, NS2Pipeline)
    assert loaded_bf16.model.dtype == torch.bfloat16
    for pipeline in (pipe, loaded, loaded_bf16):
        pipeline.set_progress_bar_config(disable=True)
    prompt = 0.3 * np.sin(2 * np.pi * 150 * np.arange(16000) / 16000).astype(np.float32)
    speech = [p("Generic loading.", prompt_audio=prompt, prompt_sampling_rate=16000, num_inference_steps=3,
                generator=torch.Generator().manual_seed(0), output_type="latent").audios[0]
              for p in (pipe, loaded, loaded_bf16)]
    assert torch.equal(speech[0], speech[1])
    assert torch.isfinite(speech[2]).all()


@pytest.mark.slow
def test_the_shipped_model_loads_from_an_installed_wheel(tmp_path):
    """Build the wheel from a copy of the sources, install it into an empty folder, and load the default model
    from there with no source checkout on the path."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for name in ("ns2_hf", "pretrained"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")],
                   check=True, cwd=source)
    wheel = next((tmp_path / "dist").glob("ns2_hf-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True)
    check = (
        "import ns2_hf, pathlib; from ns2_hf import NS2Pipeline;"
        f"assert pathlib.Path(ns2_hf.__file__).is_relative_to({str(tmp_path / 'site')!r}), ns2_hf.__file__;"
        "pipe = NS2Pipeline.from_pretrained();"
        f"assert pathlib.Path(pipe.name_or_path).is_relative_to({str(tmp_path / 'site')!r}), pipe.name_or_path;"
        "print(pipe.name_or_path)"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site"), "OMP_NUM_THREADS": "1",
                                 "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ns2_hf/pretrained/ns2-tiny-en")
