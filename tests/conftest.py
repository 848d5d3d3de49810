"""Shared test fixtures: paths to the offline corpus in ../shared, a seeded RNG, and the training
scripts (which are scripts, not package modules) loaded as modules."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

# The tiny test models are faster on one thread than on two contended ones.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO_ROOT.parent / "shared" / "corpus" / "ns2-offline-en"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not (CORPUS_DIR / "metadata.csv").is_file():
        raise FileNotFoundError(f"the shared corpus is expected at {CORPUS_DIR}")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus_texts(corpus_dir) -> dict:
    """Transcript of every corpus utterance, by its id (`kok_mix5_0003`)."""
    import csv

    with open(corpus_dir / "metadata.csv", encoding="utf-8") as handle:
        return {row["file_name"].split("/")[-1].rsplit(".", 1)[0]: row["text"] for row in csv.DictReader(handle)}


@pytest.fixture
def one_thread():
    """One torch thread for the test (`pytestmark = pytest.mark.usefixtures("one_thread")`): the test machines'
    cores are shared, and one thread avoids OpenMP spin-waiting (10× faster here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


def load_training_script(name: str):
    """`training/<name>.py` as a module (its `main`, helpers and constants)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "training" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
