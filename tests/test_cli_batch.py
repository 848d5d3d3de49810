"""`ns2-tts --text-file ... --out-dir ...`: the model loaded once, one file per line, a JSONL manifest; every
line checked before the model loads."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ns2_hf.cli import main as cli
from ns2_hf.pipelines.pipeline_ns2 import NS2Pipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPT = str(REPO_ROOT / "examples" / "prompt.wav")
OTHER_PROMPT = str(sorted((REPO_ROOT / "demo" / "examples").glob("*.wav"))[0])


def test_batch_loads_once_and_writes_each_line_and_a_manifest(tmp_path, monkeypatch):
    loads = []
    original = NS2Pipeline.from_pretrained.__func__
    monkeypatch.setattr(NS2Pipeline, "from_pretrained", classmethod(lambda cls, *a, **k: loads.append(a) or original(cls, *a, **k)))
    lines = tmp_path / "lines.jsonl"
    rows = [{"text": "The birch canoe slid on the smooth planks."}, {"text": "Glue the sheet to the dark blue background.", "id": "glue"},
            {"text": "It is easy to tell the depth of a well.", "prompt": OTHER_PROMPT, "seed": 5}]
    lines.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n", encoding="utf-8")
    assert cli(["--text-file", str(lines), "--prompt", PROMPT, "--out-dir", str(tmp_path / "speech"), "--steps", "2"]) == 0
    assert len(loads) == 1
    manifest = [json.loads(line) for line in (tmp_path / "speech" / "manifest.jsonl").read_text().splitlines()]
    assert [row["id"] for row in manifest] == ["0001", "glue", "0003"]
    assert manifest[2]["prompt"] == OTHER_PROMPT and manifest[0]["text"] == rows[0]["text"]
    # each file is what a single call with the same text, prompt and seed writes
    single = tmp_path / "single.wav"
    assert cli(["--text", rows[2]["text"], "--prompt", OTHER_PROMPT, "--seed", "5", "--out", str(single), "--steps", "2"]) == 0
    batch_audio, rate = sf.read(manifest[2]["audio"], dtype="float32")
    np.testing.assert_array_equal(batch_audio, sf.read(single, dtype="float32")[0])
    assert abs(len(batch_audio) / rate - manifest[2]["seconds"]) < 1e-3


@pytest.mark.parametrize(
    "content, extra, message",
    [
        ('{"text": "Hello."}\n{"text": 3}\n', [], 'line 2 needs a "text" string'),
        ('{"text": "Hello."\n', [], "line 1 is not JSON"),
        ('{"text": "Hello.", "id": "a"}\n{"text": "Bye.", "id": "a"}\n', [], "repeats an id"),
        ('{"text": "Hello.", "id": "../escape"}\n', [], "is not a plain file name"),
        ('{"text": "   "}\n', [], "(id 0001): `text` is empty"),
        ('{"text": "Hello.", "prompt": "missing.wav"}\n', [], "no such file"),
        ('{"text": "Hello."}\n', ["--no-out-dir"], "--text-file needs --out-dir"),
    ],
)
def test_every_line_is_checked_before_the_model_loads(tmp_path, monkeypatch, capsys, content, extra, message):
    monkeypatch.setattr(NS2Pipeline, "from_pretrained", classmethod(lambda cls, *a, **k: pytest.fail("model loaded")))
    lines = tmp_path / "lines.jsonl"
    lines.write_text(content, encoding="utf-8")
    argv = ["--text-file", str(lines), "--prompt", PROMPT]
    if "--no-out-dir" not in extra:
        argv += ["--out-dir", str(tmp_path / "speech")]
    assert cli(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("[ns2-tts] error:") and message in error
    assert not (tmp_path / "speech" / "manifest.jsonl").exists()


def test_plain_text_file_one_line_each(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there.\n\nGood morning.\n", encoding="utf-8")
    assert cli(["--text-file", str(lines), "--prompt", PROMPT, "--out-dir", str(tmp_path / "out"), "--steps", "2"]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["0001.wav", "0002.wav", "manifest.jsonl"]
