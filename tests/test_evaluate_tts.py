"""training/evaluate_tts.py: test lists, ground-truth scoring, codec mode and the function API."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import load_training_script
from ns2_hf.metrics import EvaluationItem, evaluate_items, format_table, summarize



@pytest.fixture(scope="module")
def evaluate_tts():
    return load_training_script("evaluate_tts")


def test_make_test_list_pairs_each_target_with_another_utterance_of_its_speaker(evaluate_tts, corpus_dir, tmp_path):
    list_path = tmp_path / "lists" / "test.csv"
    evaluate_tts.main(["--make-test-list", str(corpus_dir), "--speakers", "flite_slt,fes_kal", "--n", "3", "--test-list", str(list_path)])
    rows = evaluate_tts.read_test_list(str(list_path))
    assert len(rows) == 6 and {row["speaker"] for row in rows} == {"flite_slt", "fes_kal"}
    targets = {row["audio"] for row in rows}
    for row in rows:
        assert Path(row["audio"]).is_file() and Path(row["prompt_audio"]).is_file()
        assert Path(row["prompt_audio"]).name.startswith(row["speaker"]) and row["prompt_audio"] not in targets
    # a second list that never reuses the first one's targets (e.g. for tuning sampling settings)
    tuning_path = tmp_path / "lists" / "tuning.jsonl"
    evaluate_tts.main(["--make-test-list", str(corpus_dir), "--speakers", "flite_slt,fes_kal", "--n", "3", "--seed", "1",
                       "--exclude", str(list_path), "--test-list", str(tuning_path)])
    tuning = evaluate_tts.read_test_list(str(tuning_path))
    assert len(tuning) == 6 and not {row["audio"] for row in tuning} & targets
    with pytest.raises(ValueError, match="not in the corpus"):
        evaluate_tts.make_test_list(str(corpus_dir), str(tmp_path / "x.jsonl"), ["nobody"], 1)


def test_test_list_without_prompt_is_rejected(evaluate_tts, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "hello"}) + "\n")
    with pytest.raises(ValueError, match="prompt_audio"):
        evaluate_tts.read_test_list(str(path))


def test_ground_truth_only_writes_results_and_prints_the_table(evaluate_tts, corpus_dir, tmp_path, capsys):
    list_path = tmp_path / "test.jsonl"
    evaluate_tts.make_test_list(str(corpus_dir), str(list_path), ["flite_slt", "kok_alpha", "piper_joe"], 1)
    out_dir = tmp_path / "out"
    summary = evaluate_tts.main(["--test-list", str(list_path), "--ground-truth-only", "--out_dir", str(out_dir)])
    printed = capsys.readouterr().out
    rows = json.loads((out_dir / "per_utterance.json").read_text())
    with open(out_dir / "per_utterance.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    assert len(rows) == 3 and all(row["system"] == "ground_truth" and not row["errors"] for row in rows)
    ground_truth = summary["ground_truth"]
    assert ground_truth["wer"]["mean"] < 0.2 and ground_truth["sim_prompt"]["mean"] > 0.75
    # the floor: the same recordings against a different speaker's prompt are less similar
    assert ground_truth["sim_other"]["count"] == 3
    assert ground_truth["sim_other"]["mean"] < ground_truth["sim_prompt"]["mean"] - 0.1
    assert 2.0 < ground_truth["dnsmos_ovrl"]["mean"] < 5.0 and ground_truth["wer"]["count"] == 3
    assert "ground truth" in printed.splitlines()[0] and any(line.startswith("sim_prompt") for line in printed.splitlines())
    assert json.loads((out_dir / "summary.json").read_text()) == summary


def test_codec_identity_mode_reaches_the_ceiling(evaluate_tts, corpus_dir, tmp_path):
    audio_dir = tmp_path / "wavs"
    audio_dir.mkdir()
    for name in ("fes_ked_0000", "kok_kumo_0001"):
        shutil.copy(corpus_dir / "audio" / f"{name}.flac", audio_dir)
    summary = evaluate_tts.main(
        ["--codec", "identity", "--audio_dir", str(audio_dir), "--out_dir", str(tmp_path / "out"), "--metrics", "codec_quality"]
    )
    model = summary["model"]
    assert model["mel_distance"]["mean"] == pytest.approx(0.0, abs=1e-6) and model["si_snr"]["mean"] > 100
    assert model["pesq"]["mean"] > 4.5 and model["stoi"]["mean"] > 0.99 and model["pesq"]["count"] == 2
    assert model["f0_ratio"]["mean"] == pytest.approx(1.0) and model["f0_kept"]["mean"] == 1.0
    assert model["voiced_ratio"]["mean"] == pytest.approx(1.0) and model["f0_kept"]["count"] == 2


def test_codec_mode_over_a_test_list_scores_the_reconstruction_with_asr(evaluate_tts, corpus_dir, tmp_path):
    list_path = tmp_path / "test.jsonl"
    evaluate_tts.make_test_list(str(corpus_dir), str(list_path), ["flite_slt", "kok_alpha"], 1)
    identity = evaluate_tts.main(
        ["--codec", "identity", "--test-list", str(list_path), "--out_dir", str(tmp_path / "identity"), "--metrics", "wer,codec_quality"]
    )
    # the identity "codec" hands the recording to the ASR unchanged: the same WER as the ground truth
    assert identity["model"]["wer"]["count"] == 2 and identity["model"]["wer"]["mean"] == identity["ground_truth"]["wer"]["mean"]
    assert identity["model"]["wer"]["mean"] < 0.2
    # a random-weight codec destroys the words
    from ns2_hf.codec import NS2CodecConfig, NS2CodecModel

    NS2CodecModel(NS2CodecConfig.tiny()).save_pretrained(tmp_path / "random_codec")
    random = evaluate_tts.main(
        ["--codec", str(tmp_path / "random_codec"), "--test-list", str(list_path), "--out_dir", str(tmp_path / "random"), "--metrics", "wer"]
    )
    assert random["model"]["wer"]["mean"] > 0.8
    with pytest.raises(SystemExit):
        evaluate_tts.parse_args(["--codec", "identity"])


def test_evaluate_items_scores_the_system_against_ground_truth(corpus_dir):
    rate = 16000
    ground_truth, _ = sf.read(corpus_dir / "audio" / "flite_rms_0002.flac", dtype="float32")
    prompt, _ = sf.read(corpus_dir / "audio" / "flite_rms_0003.flac", dtype="float32")
    noisy = ground_truth + 0.02 * np.random.default_rng(0).standard_normal(len(ground_truth)).astype(np.float32)
    items = [
        EvaluationItem(id="copy", prompt=prompt, audio=ground_truth, ground_truth=ground_truth, durations=[0.1, 0.2, 0.1, 0.3],
                       ground_truth_durations=[0.1, 0.2, 0.1, 0.3]),
        EvaluationItem(id="noisy", prompt=prompt, audio=noisy, ground_truth=ground_truth),
        EvaluationItem(id="silent", prompt=prompt, audio=np.zeros(rate, np.float32), ground_truth=ground_truth),
    ]
    rows = evaluate_items(items, rate, metrics=("speaker_similarity", "prosody", "mcd"))
    model = {row["id"]: row for row in rows if row["system"] == "model"}
    assert model["copy"]["mcd"] == pytest.approx(0.0, abs=1e-6) and model["copy"]["sim_gt"] == pytest.approx(1.0, abs=1e-5)
    assert model["copy"]["pitch_pearson"] == pytest.approx(1.0) and model["copy"]["duration_rmse"] == 0.0
    assert model["noisy"]["mcd"] > 1.0 and model["noisy"]["pitch_mean_diff"] >= 0
    # a silent output cannot be scored by SIM or pitch: recorded as errors, not a crash
    assert model["silent"]["errors"] and "sim_prompt" not in model["silent"]
    summary = summarize(rows)
    assert summary["model"]["mcd"]["count"] == 3 and summary["ground_truth"]["sim_prompt"]["count"] == 3
    assert "—" in format_table(summary)  # metrics the ground truth has no value for
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_items(items, rate, metrics=("bleu",))


def test_model_mode_synthesizes_through_the_pipeline_api(evaluate_tts, corpus_dir, tmp_path, monkeypatch, capsys):
    """The pipeline is replaced by a stand-in that "synthesizes" the ground-truth recording, so the
    model row must match the ground truth exactly (MCD 0, SIM to GT 1)."""
    import sys
    import types

    import torch

    list_path = tmp_path / "test.jsonl"
    evaluate_tts.make_test_list(str(corpus_dir), str(list_path), ["flite_awb"], 2)
    recordings = {row["text"]: row["audio"] for row in evaluate_tts.read_test_list(str(list_path))}
    calls = []

    class StandInPipeline:
        sampling_rate, hop_length = 16000, 200

        @classmethod
        def from_pretrained(cls, folder):
            calls.append(folder)
            return cls()

        def __call__(self, text, prompt_audio, num_inference_steps, temperature, generator):
            calls.append((num_inference_steps, temperature))
            audio, _ = sf.read(recordings[text], dtype="float32")
            return types.SimpleNamespace(audios=[audio], durations=[torch.tensor([4, 8, 6])])

    monkeypatch.setitem(sys.modules, "ns2_hf.pipelines", types.SimpleNamespace(NS2Pipeline=StandInPipeline))
    out_dir = tmp_path / "out"
    summary = evaluate_tts.main(
        ["--model", "some/folder", "--test-list", str(list_path), "--steps", "7", "--temperature", "2.5",
         "--out_dir", str(out_dir), "--metrics", "speaker_similarity,mcd,prosody"]
    )
    assert calls == ["some/folder", (7, 2.5), (7, 2.5)]
    assert summary["model"]["mcd"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["model"]["sim_gt"]["mean"] == pytest.approx(1.0, abs=1e-5)
    assert summary["model"]["sim_prompt"]["mean"] == pytest.approx(summary["ground_truth"]["sim_prompt"]["mean"], abs=1e-5)
    assert summary["model"]["duration_mean"]["mean"] == pytest.approx(6 * 200 / 16000)
    assert sorted(path.name for path in (out_dir / "audio").iterdir()) == sorted(f"{Path(a).stem}.wav" for a in recordings.values())
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[-3:] == ["ground", "truth", "model"]
