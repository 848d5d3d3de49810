"""The one thread setting (`ns2_hf.threads`): `--threads`, else `$NS2_NUM_THREADS`, else 1."""

import pytest
import torch

from ns2_hf.cli import main as cli
from ns2_hf.threads import DEFAULT_NUM_THREADS, THREADS_ENV_VAR, ThreadSettingError, apply_num_threads, resolve_num_threads


def test_argument_beats_environment_beats_default(monkeypatch):
    monkeypatch.delenv(THREADS_ENV_VAR, raising=False)
    assert resolve_num_threads() == DEFAULT_NUM_THREADS == 1
    monkeypatch.setenv(THREADS_ENV_VAR, "3")
    assert resolve_num_threads() == 3
    assert resolve_num_threads(2) == 2
    monkeypatch.setenv(THREADS_ENV_VAR, " ")
    assert resolve_num_threads() == DEFAULT_NUM_THREADS


@pytest.mark.parametrize("value", [0, -1, 1.5, "two", True, 10_000])
def test_bad_counts_name_their_source(monkeypatch, value):
    monkeypatch.delenv(THREADS_ENV_VAR, raising=False)
    with pytest.raises(ThreadSettingError, match="--threads must be a whole number"):
        resolve_num_threads(value)
    monkeypatch.setenv(THREADS_ENV_VAR, str(value))
    with pytest.raises(ThreadSettingError, match=f"\\${THREADS_ENV_VAR} must be a whole number"):
        resolve_num_threads()


def test_apply_sets_torch_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert apply_num_threads(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv(THREADS_ENV_VAR, "1")
        assert apply_num_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_cli_refuses_a_bad_thread_count_before_loading(monkeypatch, capsys):
    monkeypatch.setenv(THREADS_ENV_VAR, "zero")
    code = cli(["--text", "Hello.", "--prompt", "examples/prompt.wav", "--out", "unused.wav", "--model", "nope-model"])
    assert code == 2  # the thread setting is checked with the arguments, before the (missing) model is looked up
    assert "[ns2-tts] error: $NS2_NUM_THREADS must be a whole number from 1 to 256, got 'zero'." in capsys.readouterr().err


def test_waiting_threads_sleep_when_torch_is_not_loaded_yet():
    import os
    import subprocess
    import sys

    code = ("import os, sys; from ns2_hf.threads import apply_num_threads; assert 'torch' not in sys.modules; "
            "apply_num_threads(2); import torch; print(os.environ.get('OMP_WAIT_POLICY'), torch.get_num_threads())")
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    run = lambda env: subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout.strip()
    assert run(env) == "PASSIVE 2"
    assert run({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE 2"  # a policy the user chose is kept
