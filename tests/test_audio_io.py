"""Prompt loading without librosa: `trim_silence` and `resample` give librosa's results exactly, and the
prompt path (`load_audio` + trim) imports no librosa."""

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest

from ns2_hf.audio import trim_silence
from ns2_hf.audio.io import resample

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("samples", [16000, 40001, 123457])
@pytest.mark.parametrize("top_db", [20, 40, 60])
def test_trim_matches_librosa(samples, top_db):
    rng = np.random.default_rng(samples)
    third = samples // 3
    waveform = np.concatenate([np.zeros(third), 0.3 * rng.standard_normal(third), 1e-5 * rng.standard_normal(samples - 2 * third)])
    waveform = waveform.astype(np.float32)
    trimmed, interval = trim_silence(waveform, top_db=top_db)
    expected, expected_interval = librosa.effects.trim(waveform, top_db=top_db)
    assert interval == tuple(expected_interval) and interval[0] > 0
    np.testing.assert_array_equal(trimmed, expected)
    assert trim_silence(np.zeros(5000, np.float32))[1] == (0, 5000)  # all equally quiet: kept, as librosa does


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resample_matches_librosa(rate):
    waveform = np.random.default_rng(rate).standard_normal(12345).astype(np.float32)
    expected = librosa.resample(waveform, orig_sr=rate, target_sr=16000)
    resampled = resample(waveform, rate, 16000)
    assert resampled.shape == expected.shape
    np.testing.assert_allclose(resampled, expected, atol=1e-6)


def test_reading_a_prompt_imports_no_librosa_and_checking_arguments_no_torch_nor_transformers():
    code = (
        "import sys; from ns2_hf.audio import load_audio, trim_silence; "
        "trim_silence(load_audio('examples/prompt.wav', target_sampling_rate=22050)); "
        "from ns2_hf.cli import main; assert main(['--text', ' ', '--prompt', 'examples/prompt.wav']) == 2; "
        "print(sorted(m for m in ('librosa', 'torch', 'transformers', 'diffusers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
