"""training/prepare_dataset.py on a small copy of the corpus: features, split, skipped files,
re-runs, imported and learned durations, codec codes."""

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import REPO_ROOT
from training import prepare_dataset
from training.data import (
    CODES, DURATIONS, PreparedDataset, PreparedDatasetError, audio_as_float, collate_batch, load_prepared,
    read_prepare_info,
)

SPEAKERS = {"fes_kal": 3, "kok_alpha": 3, "flite_slt": 2}  # incl. a festival voice with reference alignments
HOLDOUT = "flite_slt"
HOP = 200  # the codec config's hop; asserted below against the prepared dataset's own record


def _tree_mtimes(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def audiofolder(corpus_dir, tmp_path_factory):
    """A small audiofolder copy plus a corrupt file, a silent file and an empty transcript."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    with open(corpus_dir / "metadata.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, []
        taken = dict.fromkeys(SPEAKERS, 0)
        for row in reader:
            if taken.get(row["speaker_id"], 99) < SPEAKERS.get(row["speaker_id"], 0):
                taken[row["speaker_id"]] += 1
                shutil.copy(corpus_dir / row["file_name"], root / row["file_name"])
                rows.append(row)
    (root / "audio" / "corrupt.flac").write_bytes(b"fLaC this is not audio" * 50)
    sf.write(root / "audio" / "silent.flac", np.zeros(16000, np.float32), 16000)
    shutil.copy(root / rows[0]["file_name"], root / "audio" / "no_text.flac")
    for name, text in (("corrupt", "A corrupt file."), ("silent", "A silent file."), ("no_text", "")):
        rows.append({**rows[0], "file_name": f"audio/{name}.flac", "text": text, "speaker_id": "kok_alpha"})
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return root


def _args(audiofolder, output_dir, *extra):
    return ["--audiofolder", str(audiofolder), "--output_dir", str(output_dir), "--codec_config", "tiny",
            "--holdout_speakers", HOLDOUT, "--validation_fraction", "0.25", "--seed", "1", *extra]


@pytest.fixture(scope="module")
def prepared(audiofolder, tmp_path_factory):
    """Stage 1 output (treat as read-only; copy it before adding stages)."""
    output_dir = tmp_path_factory.mktemp("prepared") / "data"
    prepare_dataset.main(_args(audiofolder, output_dir, "--num_proc", "2"))
    return output_dir


def _copy(prepared, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(prepared, target)
    return target


def test_features_have_consistent_lengths(prepared, corpus_dir):
    from ns2_hf.text import NS2PhonemeTokenizer

    info = read_prepare_info(prepared)
    assert (info["hop_length"], info["sampling_rate"]) == (HOP, 16000)
    tokenizer = NS2PhonemeTokenizer.from_pretrained(str(prepared / prepare_dataset.TOKENIZER_DIR))
    assert info["tokenizer_vocab_hash"] == prepare_dataset.vocab_hash(tokenizer)
    dataset = load_prepared(prepared)
    rows = [row for split in dataset.values() for row in split]
    assert len(rows) == sum(SPEAKERS.values())
    for row in rows:
        frames = row["num_frames"]
        assert frames == math.ceil(len(row["audio"]) / HOP) == len(row["log_f0"]) == len(row["voiced"])
        assert row["sampling_rate"] == 16000
        assert tokenizer.convert_ids_to_tokens(row["phoneme_ids"]) == row["phonemes"]
        assert tokenizer.unk_token_id not in row["phoneme_ids"]
        assert len(row["phonemes"]) <= frames and row["normalized_text"]
        assert np.isfinite(row["log_f0"]).all()
        assert 0.2 < np.mean(row["voiced"]) < 0.95  # speech: voiced and unvoiced frames
        f0 = np.exp(np.asarray(row["log_f0"])[np.asarray(row["voiced"])])
        assert 60 < np.median(f0) < 400
        original, _ = sf.read(corpus_dir / "audio" / f"{row['id']}.flac", dtype="float32")
        np.testing.assert_array_equal(audio_as_float(row["audio"]), original)  # 16-bit 16 kHz source: stored exactly


def test_storage_is_compact_and_reads_back_within_rounding(prepared, corpus_dir):
    from ns2_hf.audio.pitch import extract_pitch

    dataset = load_prepared(prepared)
    features = dataset["train"].features
    assert (features["audio"].feature.dtype, features["log_f0"].feature.dtype) == ("int16", "float16")
    row = dataset["train"][0]
    original, _ = sf.read(corpus_dir / "audio" / f"{row['id']}.flac", dtype="float32")
    log_f0, _ = extract_pitch(original, 16000, HOP, num_frames=row["num_frames"])
    np.testing.assert_allclose(row["log_f0"], log_f0, rtol=2 ** -11)  # float16: 11 significant bits
    item = PreparedDataset(dataset["train"], columns=("audio", "log_f0"))[0]
    assert item["audio"].dtype == item["log_f0"].dtype == torch.float32
    np.testing.assert_array_equal(item["audio"].numpy(), original)


def test_split_holds_out_speaker_and_a_few_per_speaker(prepared):
    dataset = load_prepared(prepared)
    train, validation = dataset["train"], dataset["validation"]
    assert HOLDOUT not in train["speaker_id"]
    assert validation["speaker_id"].count(HOLDOUT) == SPEAKERS[HOLDOUT]
    for speaker in set(SPEAKERS) - {HOLDOUT}:
        held = validation["speaker_id"].count(speaker)
        assert held == 1 and train["speaker_id"].count(speaker) == SPEAKERS[speaker] - held
    assert not set(train["id"]) & set(validation["id"])


def test_split_is_deterministic_per_seed(prepared):
    merged = load_prepared(prepared)["train"]
    first = prepare_dataset.split_by_speaker(merged, 0.5, [], seed=3)["validation"]["id"]
    assert prepare_dataset.split_by_speaker(merged, 0.5, [], seed=3)["validation"]["id"] == first
    others = [prepare_dataset.split_by_speaker(merged, 0.5, [], seed=s)["validation"]["id"] for s in range(4, 9)]
    assert any(ids != first for ids in others)


def test_bad_files_are_skipped_and_reported(prepared):
    info = read_prepare_info(prepared)
    assert info["num_source_utterances"] == sum(SPEAKERS.values()) + 3
    assert info["num_skipped"] == 3
    reasons = {entry["id"]: entry["reason"] for entry in info["skipped"]}
    assert "cannot decode" in reasons["corrupt"]
    assert "silent" in reasons["silent"]
    assert "phonemize" in reasons["no_text"]


def test_rerun_is_a_noop(audiofolder, prepared, capsys):
    before = _tree_mtimes(prepared)
    prepare_dataset.main(_args(audiofolder, prepared))
    assert "nothing to do" in capsys.readouterr().out
    assert _tree_mtimes(prepared) == before
    assert sorted(p.name for p in prepared.parent.iterdir()) == [prepared.name]  # no leftovers


def test_failed_stage_leaves_dataset_intact(audiofolder, prepared, tmp_path):
    data = _copy(prepared, tmp_path)
    before = _tree_mtimes(data)
    with pytest.raises(OSError):
        prepare_dataset.main(_args(audiofolder, data, "--codec", str(tmp_path / "no_such_codec")))
    assert _tree_mtimes(data) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def _dead_pid() -> int:
    """The id of a process that has exited (its folders count as left by a killed run)."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


# A run slowed down (0.3 s per utterance) so that a signal lands between its features chunks.
SLOW_RUN = ("import sys, time; from training import prepare_dataset as p; f = p.utterance_features; "
            "p.utterance_features = lambda *a, **k: (time.sleep(0.3), f(*a, **k))[1]; p.main(sys.argv[1:])")


# A run whose codec is slowed down (0.5 s per batch) so that a signal lands between its codes chunks.
SLOW_CODEC_RUN = ("import sys, time; from training import prepare_dataset as p; from ns2_hf.codec import NS2CodecModel "
                  "as M; f = M.encode; M.encode = lambda *a, **k: (time.sleep(0.5), f(*a, **k))[1]; "
                  "p.main(sys.argv[1:])")


def _slow_run(args, code=SLOW_RUN):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _resume_dirs(folder, holds="features"):
    """The resume folders beside `folder/data` whose chunks hold `holds` (features, or e.g. "codes of split train")."""
    return [path for path in sorted(folder.glob("data.resume-*"))
            if prepare_dataset.resume_holds(path).startswith(holds)]


def _wait_for_chunk(folder, number, process, holds="features"):
    """Wait until `process` has finished chunk `number` in its resume folder of `holds` beside `folder/data`."""
    def finished():
        return any((path / f"chunk-{number:06d}").is_dir() for path in _resume_dirs(folder, holds))

    deadline = time.monotonic() + 120
    while not finished() and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before the signal"
        time.sleep(0.05)
    assert finished(), "the run never finished the chunk"


def _chunk_ids(resume_dir):
    from datasets import load_from_disk

    return {chunk.name: load_from_disk(str(chunk))["id"] for chunk in sorted(resume_dir.glob("chunk-*"))}


def test_sigterm_keeps_the_finished_chunks_removes_the_work_folder_and_keeps_the_dataset(audiofolder, prepared,
                                                                                          tmp_path):
    data = _copy(prepared, tmp_path)
    before = _tree_mtimes(data)
    process = _slow_run(_args(audiofolder, data, "--overwrite", "--resume_chunk_rows", "2"))
    _wait_for_chunk(tmp_path, 1, process)
    process.send_signal(signal.SIGTERM)  # mid-chunk 2 (or later): its half-written rows are in the work folder
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    [resume_dir] = tmp_path.glob("data.resume-*")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", resume_dir.name]  # the work folder is gone
    chunks = _chunk_ids(resume_dir)  # only whole chunks, each readable, in source order
    assert list(chunks)[:2] == ["chunk-000000", "chunk-000001"] and all(len(ids) == 2 for ids in chunks.values())
    assert sorted(chunks) == [f"chunk-{n:06d}" for n in range(len(chunks))]
    assert _tree_mtimes(data) == before


def test_a_killed_run_resumes_its_finished_chunks_into_the_uninterrupted_dataset(audiofolder, prepared, tmp_path,
                                                                                 monkeypatch, capsys):
    data = tmp_path / "data"
    process = _slow_run(_args(audiofolder, data, "--resume_chunk_rows", "3"))
    _wait_for_chunk(tmp_path, 1, process)
    process.kill()  # SIGKILL: no clean-up at all
    process.wait(timeout=60)
    [resume_dir] = tmp_path.glob("data.resume-*")
    assert (tmp_path / f"data.work-{process.pid}").is_dir()
    finished = {utterance for ids in _chunk_ids(resume_dir).values() for utterance in ids}
    assert len(finished) >= 6
    computed = []
    features = prepare_dataset.utterance_features

    def counted(example, *args, **kwargs):
        computed.append(example["id"])
        return features(example, *args, **kwargs)

    monkeypatch.setattr(prepare_dataset, "utterance_features", counted)
    prepare_dataset.main(_args(audiofolder, data, "--resume_chunk_rows", "3"))
    out = capsys.readouterr().out
    assert f"removed data.work-{process.pid}" in out
    assert f"resumed {len(finished)} of 11 source rows from {resume_dir.name}" in out
    assert computed and not set(computed) & finished  # the finished chunks are not computed again
    assert len(computed) + len(finished) == 11
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]  # the resume folder goes with the swap
    resumed, whole = load_prepared(data), load_prepared(prepared)
    for split in ("train", "validation"):
        assert resumed[split].features == whole[split].features
        assert resumed[split].to_dict() == whole[split].to_dict()
    resumed_info, whole_info = read_prepare_info(data), read_prepare_info(prepared)
    for key in ("source", "skipped", "splits", "speakers", "num_source_utterances", "tokenizer_vocab_hash"):
        assert resumed_info[key] == whole_info[key]


@pytest.fixture(scope="module")
def tiny_models(prepared, tmp_path_factory):
    """`(aligner folder, codec folder)`: a tiny random aligner for the prepared tokenizer and a tiny random codec."""
    from ns2_hf.alignment import NS2AlignerConfig, NS2AlignerModel
    from ns2_hf.codec import NS2CodecConfig, NS2CodecModel
    from ns2_hf.text import NS2PhonemeTokenizer

    folder = tmp_path_factory.mktemp("models")
    tokenizer = NS2PhonemeTokenizer.from_pretrained(str(prepared / prepare_dataset.TOKENIZER_DIR))
    NS2AlignerModel(NS2AlignerConfig.tiny(vocab_size=len(tokenizer))).save_pretrained(folder / "aligner")
    NS2CodecModel(NS2CodecConfig.tiny()).save_pretrained(folder / "codec")
    return folder / "aligner", folder / "codec"


def _stage_args(aligner=None, codec=None):
    """The aligner and/or the codec stage, in resumable chunks of 2 rows, one utterance a batch."""
    return [*(["--aligner", str(aligner)] if aligner else []), *(["--codec", str(codec)] if codec else []),
            "--batch_size", "1", "--resume_chunk_rows", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def staged(audiofolder, prepared, tiny_models, tmp_path_factory):
    """`prepared` plus durations and codes of an uninterrupted run of both stages (`_stage_args`; read-only)."""
    data = _copy(prepared, tmp_path_factory.mktemp("staged"))
    prepare_dataset.main(_args(audiofolder, data, *_stage_args(*tiny_models)))
    return data


def _count_rows(monkeypatch, model_class, method):
    """The batch sizes `model_class.method` is called with from now on (its first argument is the batch)."""
    rows, original = [], getattr(model_class, method)

    def counted(self, batch, *args, **kwargs):
        rows.append(len(batch))
        return original(self, batch, *args, **kwargs)

    monkeypatch.setattr(model_class, method, counted)
    return rows


def _stage_chunk_rows(folder, holds):
    """`{resume folder: rows in its chunks}` of the resume folders of `holds` beside `folder/data`."""
    from datasets import load_from_disk

    return {path: sum(len(load_from_disk(str(chunk))) for chunk in path.glob("chunk-*"))
            for path in _resume_dirs(folder, holds)}


def test_an_interrupted_codec_stage_resumes_its_finished_chunks_and_another_codec_does_not(
        audiofolder, prepared, staged, tiny_models, tmp_path, monkeypatch, capsys):
    """The second run that adds codes to a prepared dataset, stopped (Ctrl-C) in its second chunk: a run with
    another codec folder encodes every row; the same codec again encodes only the unfinished ones."""
    from ns2_hf.codec import NS2CodecModel

    aligner, codec = tiny_models
    data = _copy(prepared, tmp_path)
    before = _tree_mtimes(data)
    encode = NS2CodecModel.encode

    def interrupted(self, *args, **kwargs):
        if len(encoded) == 3:  # batches of one row: train chunk 0 is finished, chunk 1 half done
            raise KeyboardInterrupt
        encoded.append(1)
        return encode(self, *args, **kwargs)

    encoded = []
    monkeypatch.setattr(NS2CodecModel, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset.main(_args(audiofolder, data, *_stage_args(codec=codec)))
    assert _tree_mtimes(data) == before
    [(codes_dir, finished)] = _stage_chunk_rows(tmp_path, "codes of split train").items()
    assert finished == 2 and sorted(path.name for path in tmp_path.iterdir()) == ["data", codes_dir.name]
    monkeypatch.setattr(NS2CodecModel, "encode", encode)
    encoded = _count_rows(monkeypatch, NS2CodecModel, "encode")

    other_codec = tmp_path / "other_codec"  # the same weights in another folder: another model to the key
    shutil.copytree(codec, other_codec)
    save_atomically = prepare_dataset.save_atomically
    monkeypatch.setattr(prepare_dataset, "save_atomically", lambda *args: sys.exit("stopped before the save"))
    with pytest.raises(SystemExit):
        prepare_dataset.main(_args(audiofolder, data, *_stage_args(codec=other_codec)))
    out = capsys.readouterr().out
    assert sum(encoded) == 8 and "] resumed" not in out
    assert f"kept {codes_dir.name}: finished codes of split train (codec {codec})" in out
    others = [path for path in _resume_dirs(tmp_path, "codes") if path != codes_dir]
    assert len(others) == 2 and _stage_chunk_rows(tmp_path, "codes of split train")[codes_dir] == 2

    monkeypatch.setattr(prepare_dataset, "save_atomically", save_atomically)
    encoded.clear()
    prepare_dataset.main(_args(audiofolder, data, *_stage_args(codec=codec)))
    assert f"[codes (train)] resumed 2 of 4 rows from {codes_dir.name}" in capsys.readouterr().out
    assert sum(encoded) == 6  # not the finished chunk again
    assert sorted(tmp_path.iterdir()) == sorted([data, other_codec, *others])  # the other codec's chunks are kept
    resumed, whole = load_prepared(data, required_columns=[CODES]), load_prepared(staged)
    for split in ("train", "validation"):
        assert resumed[split].features == whole[split].remove_columns(DURATIONS).features
        assert resumed[split].to_dict() == whole[split].remove_columns(DURATIONS).to_dict()


def test_a_run_killed_in_the_codec_stage_resumes_its_features_durations_and_codes(
        audiofolder, prepared, staged, tiny_models, tmp_path, monkeypatch, capsys):
    """All stages in one run, SIGKILLed after its first chunk of codes: the re-run computes no features or
    durations and only the codes of the unfinished chunks, and gives the dataset of an uninterrupted run."""
    from ns2_hf.alignment import NS2AlignerModel
    from ns2_hf.codec import NS2CodecModel

    data = tmp_path / "data"
    args = _args(audiofolder, data, *_stage_args(*tiny_models))
    process = _slow_run(args, SLOW_CODEC_RUN)
    _wait_for_chunk(tmp_path, 0, process, holds="codes of split train")
    process.kill()  # SIGKILL: no clean-up at all
    process.wait(timeout=60)
    durations = _stage_chunk_rows(tmp_path, "durations")
    assert sorted(durations.values()) == [4, 4]  # the aligner stage, both splits, came before the codes
    finished = sum(_stage_chunk_rows(tmp_path, "codes").values())
    assert 2 <= finished < 8
    features, computed = prepare_dataset.utterance_features, []
    monkeypatch.setattr(prepare_dataset, "utterance_features",
                        lambda example, *a, **k: (computed.append(example["id"]), features(example, *a, **k))[1])
    aligned = _count_rows(monkeypatch, NS2AlignerModel, "align")
    encoded = _count_rows(monkeypatch, NS2CodecModel, "encode")
    prepare_dataset.main(args)
    out = capsys.readouterr().out
    assert f"removed data.work-{process.pid}" in out and "[codes (train)] resumed" in out
    for path in durations:
        assert f"resumed 4 of 4 rows from {path.name}" in out
    assert not computed and not aligned and sum(encoded) == 8 - finished
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]  # every resume folder goes with the swap
    resumed, whole = load_prepared(data, required_columns=[DURATIONS, CODES]), load_prepared(staged)
    for split in ("train", "validation"):
        assert resumed[split].features == whole[split].features
        assert resumed[split].to_dict() == whole[split].to_dict()
    resumed_info, whole_info = read_prepare_info(data), read_prepare_info(staged)
    for key in ("source", "skipped", "splits", "speakers", "aligner", "codec", "tokenizer_vocab_hash"):
        assert resumed_info[key] == whole_info[key]


def test_the_next_run_cleans_up_after_a_killed_one(audiofolder, prepared, tmp_path, capsys):
    data = _copy(prepared, tmp_path)
    dead = _dead_pid()
    for leftover in (f"data.work-{dead}", f"data.tmp-{dead}"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "part.arrow").write_bytes(b"0" * 1000)
    live = tmp_path / f"data.work-{os.getppid()}"  # a run still going (a live process): untouched
    live.mkdir()
    resume_dir = tmp_path / "data.resume-0123456789ab"  # finished chunks of a run with other arguments: kept
    (resume_dir / "chunk-000000").mkdir(parents=True)
    prepare_dataset.main(_args(audiofolder, data))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", resume_dir.name, live.name]
    live.rmdir()
    shutil.rmtree(resume_dir)
    # killed between parking the finished dataset and swapping the new one in: the dataset comes back
    data.rename(tmp_path / f"data.old-{dead}")
    prepare_dataset.main(_args(audiofolder, data))
    out = capsys.readouterr().out
    assert f"kept {resume_dir.name}: finished features" in out and f"restored {data}" in out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]
    assert load_prepared(data)["train"]["id"] == load_prepared(prepared)["train"]["id"]


def test_imported_festival_alignments_sum_to_frames(audiofolder, prepared, tmp_path, corpus_dir):
    from ns2_hf.alignment import read_alignment_json
    from ns2_hf.text import NS2PhonemeTokenizer, phonemize

    data = _copy(prepared, tmp_path)
    prepare_dataset.main(_args(audiofolder, data, "--alignments_dir", str(corpus_dir / "alignments")))
    dataset = load_prepared(data, required_columns=[DURATIONS])
    rows = [row for split in dataset.values() for row in split]
    assert len(rows) == SPEAKERS["fes_kal"]  # the others have no reference alignment: skipped, reported
    skipped = [e for e in read_prepare_info(data)["skipped"] if e["stage"] == "alignments"]
    assert len(skipped) == sum(SPEAKERS.values()) - SPEAKERS["fes_kal"]
    tokenizer = NS2PhonemeTokenizer.from_pretrained(str(data / "tokenizer"))
    assert tokenizer.get_vocab() == NS2PhonemeTokenizer().get_vocab()  # the pipeline's, not festival's labels
    for row in rows:
        # the durations sit on the front end's own tokens: every token the pipeline gives is known
        assert row["phonemes"] == phonemize(row["text"])
        assert tokenizer.unk_token_id not in tokenizer.encode_phonemes(phonemize(row["text"]))
        assert len(row["durations"]) == len(row["phoneme_ids"])
        assert sum(row["durations"]) == row["num_frames"]
        # the reference's pauses land on punctuation: the first pause token ends where festival's pause ends
        segments = read_alignment_json(corpus_dir / "alignments" / f"{row['id']}.json")
        inner_pauses = [end for label, _, end in segments[1:-1] if label == "pau"]
        punctuation = [index for index, token in enumerate(row["phonemes"][:-1]) if token in ",;:—"]
        if inner_pauses and punctuation:
            end_s = np.cumsum(row["durations"])[punctuation[0]] * HOP / 16000
            assert abs(end_s - inner_pauses[0]) <= HOP / 16000


def test_aligner_and_codec_stages(audiofolder, prepared, tiny_models, tmp_path):
    from ns2_hf.codec import NS2CodecModel

    aligner, codec_dir = tiny_models
    codec = NS2CodecModel.from_pretrained(codec_dir).eval()
    data = _copy(prepared, tmp_path)
    prepare_dataset.main(_args(audiofolder, data, "--aligner", str(aligner), "--batch_size", "3"))
    prepare_dataset.main(_args(audiofolder, data, "--codec", str(codec_dir), "--batch_size", "3"))
    info = read_prepare_info(data)
    assert info["last_run_added"] == [CODES] and info["aligner"] and info["codec"]

    dataset = load_prepared(data, required_columns=[DURATIONS, CODES])
    n_q = codec.config.num_quantizers
    rows = list(dataset["train"]) + list(dataset["validation"])
    for index, row in enumerate(rows):
        durations = np.asarray(row["durations"])
        assert len(durations) == len(row["phoneme_ids"]) and durations.min() >= 1
        assert durations.sum() == row["num_frames"]
        codes = np.asarray(row["codes"])
        assert codes.shape == (n_q, row["num_frames"])
        if index < 3:  # batched, padded encoding equals encoding the clip alone
            with torch.no_grad():
                alone = codec.encode(torch.from_numpy(audio_as_float(row["audio"]))[None]).audio_codes[0].numpy()
            np.testing.assert_array_equal(codes, alone)

    items = PreparedDataset(dataset["train"])
    batch = collate_batch([items[0], items[1]])
    assert batch["codes"].shape[:2] == (2, n_q)
    assert torch.equal(batch["durations"].sum(1), batch["num_frames"])
    assert dataset["train"].features["codes"].feature.feature.dtype == "int16"

    prepare_dataset.main(_args(audiofolder, data, "--drop_audio"))
    dropped = load_prepared(data, required_columns=[DURATIONS, CODES])
    assert "audio" not in dropped["train"].column_names and read_prepare_info(data)["dropped_columns"] == ["audio"]
    assert dropped["train"]["codes"] == dataset["train"]["codes"]
    with pytest.raises(PreparedDatasetError, match="without --drop_audio"):
        PreparedDataset(dropped["train"], columns=("audio",))


def test_manifest_without_speakers(corpus_dir, tmp_path):
    texts = {"piper_joe_0000": "Memory fault - where am I?",
             "flite_rms_0000": "We found you hiding We found you lying Choking on the dirt and sand."}
    rows = [{"audio": str(corpus_dir / "audio" / f"{name}.flac"), "text": text} for name, text in texts.items()]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    prepare_dataset.main(["--manifest", str(manifest), "--output_dir", str(tmp_path / "data"),
                          "--codec_config", "tiny", "--validation_fraction", "0.5"])
    dataset = load_prepared(tmp_path / "data")
    assert dataset["train"]["speaker_id"] == ["unknown"] and len(dataset["validation"]) == 1


def test_hub_style_dataset_with_audio_bytes(corpus_dir, tmp_path):
    """`--dataset` reads what `load_dataset` reads (here a local parquet folder, as Hub datasets
    are stored) and decodes audio bytes with soundfile."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["piper_joe_0000", "flite_rms_0000"]
    audio = [{"bytes": (corpus_dir / "audio" / f"{name}.flac").read_bytes(), "path": f"{name}.flac"} for name in names]
    (tmp_path / "hub").mkdir()
    pq.write_table(pa.table({"audio": audio, "sentence": ["Memory fault - where am I?", "We found you hiding."],
                             "speaker": ["joe", "rms"]}), tmp_path / "hub" / "train.parquet")
    prepare_dataset.main(["--dataset", str(tmp_path / "hub"), "--text_column", "sentence", "--speaker_column",
                          "speaker", "--holdout_speakers", "rms", "--output_dir", str(tmp_path / "data"),
                          "--codec_config", "tiny"])
    dataset = load_prepared(tmp_path / "data")
    assert dataset["train"]["id"] == ["piper_joe_0000"] and dataset["validation"]["speaker_id"] == ["rms"]
    original, _ = sf.read(corpus_dir / "audio" / "piper_joe_0000.flac", dtype="float32")
    np.testing.assert_array_equal(audio_as_float(dataset["train"][0]["audio"]), original)


def test_augmented_speakers_are_new_ids_made_from_one_real_speaker_each(audiofolder, tmp_path):
    from ns2_hf.metrics import pitch_contour

    def median_f0(audio):  # the statistic the transform moves (a mean is pulled by octave errors)
        f0, voiced = pitch_contour(np.asarray(audio, dtype=np.float32), 16000)
        return float(np.median(f0[voiced]))

    output_dir = tmp_path / "augmented"
    prepare_dataset.main(_args(audiofolder, output_dir, "--augment_speakers", "3"))
    info = read_prepare_info(output_dir)
    transforms = {t["speaker_id"]: t for t in info["augmented_speakers"]}
    assert sorted(transforms) == ["fes_kal_aug0", "fes_kal_aug2", "kok_alpha_aug1"]  # never the held-out speaker
    dataset = load_prepared(output_dir)
    rows = {row["id"]: row for split in dataset.values() for row in split}
    assert set(info["speakers"]["validation"]) >= {HOLDOUT} and not any(HOLDOUT in s for s in transforms)
    for speaker, transform in transforms.items():
        augmented = [row for row in rows.values() if row["speaker_id"] == speaker]
        assert len(augmented) == SPEAKERS[transform["source_speaker"]]
        for row in augmented:
            source = rows[row["id"].rsplit("_aug", 1)[0]]
            assert source["speaker_id"] == transform["source_speaker"] and row["phonemes"] == source["phonemes"]
            assert row["num_frames"] == math.ceil(len(row["audio"]) / HOP) == len(row["log_f0"]) == len(row["voiced"])
            shift = 12 * math.log2(median_f0(audio_as_float(row["audio"])) / median_f0(audio_as_float(source["audio"])))
            assert shift == pytest.approx(transform["semitones"], abs=0.3)
            assert len(row["audio"]) / len(source["audio"]) == pytest.approx(transform["duration_factor"], rel=0.01)
    # a re-run must ask for the same augmentation (the source check covers it)
    with pytest.raises(ValueError, match="was prepared from"):
        prepare_dataset.main(_args(audiofolder, output_dir))


def test_shards_merge_into_the_unsharded_dataset(audiofolder, prepared, tmp_path):
    from datasets import load_from_disk

    shards = [tmp_path / f"shard{index}" for index in range(2)]
    for index, shard in enumerate(shards):
        prepare_dataset.main(_args(audiofolder, shard, "--shard", f"{index}/2"))
    assert load_from_disk(str(shards[0]))["train"]["source_index"] == [0, 2, 4, 6]  # every 2nd row of the 8
    with pytest.raises(ValueError, match="shards 0..1"):
        prepare_dataset.main(["--merge", str(shards[0]), str(shards[0]), "--output_dir", str(tmp_path / "bad")])
    prepare_dataset.main(["--merge", *map(str, reversed(shards)), "--output_dir", str(tmp_path / "merged")])
    merged, whole = load_prepared(tmp_path / "merged"), load_prepared(prepared)
    for split in ("train", "validation"):
        assert merged[split].features == whole[split].features
        assert merged[split].to_dict() == whole[split].to_dict()  # rows, their order and the split
    merged_info, whole_info = read_prepare_info(tmp_path / "merged"), read_prepare_info(prepared)
    assert merged_info["tokenizer_vocab_hash"] == whole_info["tokenizer_vocab_hash"]
    assert merged_info["source"] == whole_info["source"] and merged_info["splits"] == whole_info["splits"]


def test_a_stage_added_to_a_float32_dataset_keeps_its_dtypes(audiofolder, prepared, tmp_path):
    from datasets import DatasetDict, Features, List, Value, load_from_disk

    from ns2_hf.codec import NS2CodecConfig, NS2CodecModel

    NS2CodecModel(NS2CodecConfig.tiny()).save_pretrained(tmp_path / "codec")
    data = _copy(prepared, tmp_path)
    compact = load_from_disk(str(data))
    old = DatasetDict({name: split.cast(Features({**split.features, "audio": List(Value("float32")),
                                                  "log_f0": List(Value("float32"))}))
                       for name, split in compact.items()})  # the layout written before compact storage
    old.save_to_disk(str(tmp_path / "old"))
    shutil.rmtree(data)
    (tmp_path / "old").rename(data)
    shutil.copytree(prepared / prepare_dataset.TOKENIZER_DIR, data / prepare_dataset.TOKENIZER_DIR)
    shutil.copy(prepared / "prepare_info.json", data / "prepare_info.json")
    prepare_dataset.main(_args(audiofolder, data, "--codec", str(tmp_path / "codec")))
    dataset = load_prepared(data, required_columns=[CODES])
    assert dataset["train"].features["audio"].feature.dtype == "float32"  # not converted by the new stage
    for name in ("train", "validation"):
        assert dataset[name]["audio"] == old[name]["audio"]


@pytest.mark.parametrize("audio_format", ["flac", "opus"])
def test_encoded_audio_formats_read_back_and_are_smaller(audiofolder, prepared, tmp_path, corpus_dir, audio_format):
    """`--audio_format flac` stores the audio bit-exactly in about half the bytes; `opus` in about a tenth, close to
    the recording (a perceptual codec: within -15 dB of error); every reader (`PreparedDataset`, `audio_as_float`)
    decodes them, and a stage added later (the codec's codes) reads the stored audio."""
    from ns2_hf.codec import NS2CodecConfig, NS2CodecModel

    data = tmp_path / "data"
    prepare_dataset.main(_args(audiofolder, data, "--audio_format", audio_format))
    assert read_prepare_info(data)["audio_format"] == audio_format
    dataset, reference = load_prepared(data), load_prepared(prepared)
    assert dataset["train"]["id"] == reference["train"]["id"]
    assert dataset["train"].features["audio"].dtype == "binary"
    stored = sum(len(a) for a in dataset["train"]["audio"])
    pcm_bytes = 2 * sum(len(a) for a in reference["train"]["audio"])
    assert stored < (0.7 if audio_format == "flac" else 0.2) * pcm_bytes
    items, reference_items = PreparedDataset(dataset["train"]), PreparedDataset(reference["train"])
    for index in range(len(items)):
        audio, original = items[index]["audio"].numpy(), reference_items[index]["audio"].numpy()
        assert items[index]["num_frames"] == reference_items[index]["num_frames"]
        if audio_format == "flac":
            np.testing.assert_array_equal(audio, original)
        else:
            assert len(audio) == len(original)
            error = np.mean((audio - original) ** 2) / np.mean(original**2)
            assert error < 10 ** (-15 / 10)
    codec = NS2CodecModel(NS2CodecConfig.tiny()).eval()
    codec.save_pretrained(tmp_path / "codec")
    prepare_dataset.main(_args(audiofolder, data, "--audio_format", audio_format, "--codec", str(tmp_path / "codec"),
                               "--device", "cpu"))
    row = load_prepared(data, required_columns=[CODES])["train"][0]
    with torch.no_grad():
        alone = codec.encode(torch.from_numpy(audio_as_float(row["audio"]))[None]).audio_codes[0].numpy()
    np.testing.assert_array_equal(np.asarray(row["codes"]), alone)


def test_decode_audio_copies_an_opus_dataset_with_its_audio_decoded_once(audiofolder, prepared, tmp_path):
    """training/decode_audio.py: the copy stores what the Opus bytes decode to as int16, every other column,
    the tokenizer and prepare_info unchanged but for `audio_format`; it refuses a PCM source and an existing output."""
    from training import decode_audio

    data = tmp_path / "opus"
    prepare_dataset.main(_args(audiofolder, data, "--audio_format", "opus"))
    copy = decode_audio.main([str(data), str(tmp_path / "pcm"), "--num_proc", "2"])
    source, decoded = load_prepared(data), load_prepared(copy)
    assert decoded["train"].features["audio"].feature.dtype == "int16"
    assert read_prepare_info(copy) == {**read_prepare_info(data), "audio_format": "pcm16"}
    assert sorted(path.name for path in (copy / "tokenizer").iterdir()) == sorted(path.name for path in (data / "tokenizer").iterdir())
    for split in ("train", "validation"):
        assert decoded[split].column_names == source[split].column_names
        for row, original in zip(decoded[split], source[split]):
            assert {k: v for k, v in row.items() if k != "audio"} == {k: v for k, v in original.items() if k != "audio"}
            np.testing.assert_allclose(audio_as_float(row["audio"]), audio_as_float(original["audio"]), atol=0.5 / 32768)
    items = PreparedDataset(decoded["train"])
    assert items[0]["audio"].dtype == torch.float32 and len(items[0]["audio"]) == len(audio_as_float(source["train"][0]["audio"]))
    with pytest.raises(SystemExit, match="exists"):
        decode_audio.main([str(data), str(copy)])
    with pytest.raises(SystemExit, match="already stores its audio as 16-bit PCM"):
        decode_audio.main([str(prepared), str(tmp_path / "again")])


SOURCE_UTTERANCES = {"piper_joe_0000": "joe", "flite_rms_0000": "rms", "piper_joe_0001": "joe",
                     "flite_rms_0001": "rms", "piper_joe_0002": "joe"}


def _audio_rows(corpus_dir, corpus_texts):
    """Hub-style columns of a few corpus utterances: audio as {bytes, path}, text, speaker."""
    return {"audio": [{"bytes": (corpus_dir / "audio" / f"{name}.flac").read_bytes(), "path": f"{name}.flac"}
                      for name in SOURCE_UTTERANCES],
            "sentence": [corpus_texts[name] for name in SOURCE_UTTERANCES],
            "speaker": list(SOURCE_UTTERANCES.values())}


def _source_args(output_dir, *source):
    return [*source, "--text_column", "sentence", "--speaker_column", "speaker", "--holdout_speakers", "rms",
            "--output_dir", str(output_dir), "--codec_config", "tiny"]


def test_a_save_to_disk_folder_is_a_source(corpus_dir, corpus_texts, tmp_path):
    from datasets import Audio, Dataset, DatasetDict

    # an Audio column, as datasets saves one (cast from {bytes, path}: encoding examples would need torchcodec)
    rows = Dataset.from_dict(_audio_rows(corpus_dir, corpus_texts)).cast_column("audio", Audio())
    DatasetDict(dev=rows.select(range(4)), test=rows.select([4])).save_to_disk(str(tmp_path / "saved"))
    prepare_dataset.main(_source_args(tmp_path / "data", "--dataset", str(tmp_path / "saved"), "--dataset_split",
                                      "dev"))
    dataset = load_prepared(tmp_path / "data")
    assert sorted([*dataset["train"]["id"], *dataset["validation"]["id"]]) == sorted(list(SOURCE_UTTERANCES)[:4])
    row = dataset["train"][0]
    original, _ = sf.read(corpus_dir / "audio" / f"{row['id']}.flac", dtype="float32")
    np.testing.assert_array_equal(audio_as_float(row["audio"]), original)  # decoded by soundfile, stored exactly
    with pytest.raises(ValueError, match=r"has splits \['dev', 'test'\], not 'train'"):
        prepare_dataset.main(_source_args(tmp_path / "other", "--dataset", str(tmp_path / "saved")))
    with pytest.raises(ValueError, match="save_to_disk folder"):
        prepare_dataset.main(_source_args(tmp_path / "other", "--dataset", str(tmp_path / "saved"), "--streaming"))


def test_parquet_shards_by_data_files_and_streamed(corpus_dir, corpus_texts, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(_audio_rows(corpus_dir, corpus_texts))
    (tmp_path / "shards").mkdir()
    pq.write_table(table.slice(0, 3), tmp_path / "shards" / "part-0.parquet")
    pq.write_table(table.slice(3), tmp_path / "shards" / "part-1.parquet")
    files = ["--dataset", "parquet", "--data_files", str(tmp_path / "shards" / "*.parquet")]
    prepare_dataset.main(_source_args(tmp_path / "read", *files))
    prepare_dataset.main(_source_args(tmp_path / "streamed", *files, "--streaming", "--resume_chunk_rows", "2"))
    read, streamed = load_prepared(tmp_path / "read"), load_prepared(tmp_path / "streamed")
    assert sorted([*read["train"]["id"], *read["validation"]["id"]]) == sorted(SOURCE_UTTERANCES)
    for split in ("train", "validation"):
        assert streamed[split].to_dict() == read[split].to_dict()
    info = read_prepare_info(tmp_path / "streamed")
    assert info["source"]["data_files"] == [str(tmp_path / "shards" / "*.parquet")]
    assert info["source"] == read_prepare_info(tmp_path / "read")["source"]  # streaming reads the same source
    # --shard on a stream: every shard reads the whole stream and prepares its own rows
    prepare_dataset.main(_source_args(tmp_path / "shard1", *files, "--streaming", "--shard", "1/2"))
    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "shard1"))["train"]["source_index"] == [1, 3]
