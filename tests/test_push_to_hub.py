"""training/push_to_hub.py: the folders it would upload, the upload calls, and the model card."""

from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, SpaceCard
from huggingface_hub.errors import LocalTokenNotFoundError

from ns2_hf.pipelines import NS2Pipeline, build_untrained_pipeline
from training.push_to_hub import MODEL_CARD, REQUIRED_CARD_FIELDS, PublishError, load_model_card, main

FAKE_TOKEN = "hf_FakeTokenThatMustNeverBeWritten1234567890"
LEAD_SECTIONS = (
    "## Model description",
    "## How to use",
    "## Training data and procedure",
    "## Evaluation",
    "## Limitations",
    "## Responsible use",
    "## Citation",
)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipe") / "ns2-tiny-random"
    build_untrained_pipeline("tiny", seed=0).save_pretrained(path)
    return path


class FakeHfApi:
    """Records the Hub calls `main` makes (and what each uploaded folder held at that moment)."""

    def __init__(self, logged_in=True):
        self.logged_in = logged_in
        self.calls = []

    def whoami(self):
        if not self.logged_in:
            raise LocalTokenNotFoundError("Token is required but no token found.")
        return {"name": "tester"}

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def add_space_variable(self, repo_id, key, value, **kwargs):
        self.calls.append(("add_space_variable", repo_id, {"key": key, "value": value, **kwargs}))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        files = sorted(str(path.relative_to(folder_path)) for path in Path(folder_path).rglob("*") if path.is_file())
        self.calls.append(("upload_folder", repo_id, {**kwargs, "files": files}))


def test_model_card_has_hub_metadata_and_the_lead_sections():
    card = ModelCard.load(MODEL_CARD, ignore_metadata_errors=False)
    data = card.data.to_dict()
    for field in REQUIRED_CARD_FIELDS:
        assert data.get(field), field
    assert data["pipeline_tag"] == "text-to-speech"
    assert data["license"] == "apache-2.0" and data["language"] == ["en"]
    for section in LEAD_SECTIONS:
        assert section in card.text, section
    assert load_model_card() is not None


def test_card_without_pipeline_tag_is_refused(tmp_path):
    text = MODEL_CARD.read_text(encoding="utf-8").replace("pipeline_tag: text-to-speech\n", "")
    (tmp_path / "card.md").write_text(text, encoding="utf-8")
    with pytest.raises(PublishError, match="pipeline_tag"):
        load_model_card(tmp_path / "card.md")


def test_dry_run_builds_loadable_model_and_space_folders_without_the_token(pipeline_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    out = tmp_path / "upload"
    assert main(["--pipeline", str(pipeline_dir), "--repo-id", "me/ns2-tiny", "--space-repo-id", "me/ns2-demo", "--dry-run", str(out)]) == 0

    # the model folder is the pipeline, loadable as is, plus the model card
    reloaded = NS2Pipeline.from_pretrained(out / "model")
    original = NS2Pipeline.from_pretrained(pipeline_dir)
    for name, tensor in original.model.state_dict().items():
        torch.testing.assert_close(reloaded.model.state_dict()[name], tensor, rtol=0, atol=0)
    card = ModelCard.load(out / "model" / "README.md", ignore_metadata_errors=False)
    assert card.data.pipeline_tag == "text-to-speech" and card.data.library_name == "ns2-hf"

    # the space folder runs app.py with the package beside it and names the model repo
    space = out / "space"
    for relative in ("app.py", "requirements.txt", "examples/sentences.txt", "ns2_hf/pipelines/pipeline_ns2.py"):
        assert (space / relative).is_file(), relative
    assert list((space / "examples").glob("*.wav"))
    assert not list(space.rglob("__pycache__"))
    space_card = SpaceCard.load(space / "README.md")
    assert space_card.data.sdk == "gradio" and space_card.data.app_file == "app.py"
    assert space_card.data.models == ["me/ns2-tiny"]

    written = [path for path in out.rglob("*") if path.is_file()]
    assert not [path for path in written if FAKE_TOKEN.encode() in path.read_bytes()]
    assert FAKE_TOKEN not in "".join(capsys.readouterr())


def test_upload_creates_repos_uploads_folders_and_points_the_space_at_the_model(pipeline_dir):
    api = FakeHfApi()
    argv = ["--pipeline", str(pipeline_dir), "--repo-id", "me/ns2-tiny", "--private", "--space-repo-id", "me/ns2-demo"]
    assert main(argv, api=api) == 0
    calls = {(name, repo_id): kwargs for name, repo_id, kwargs in api.calls}
    assert [name for name, _, _ in api.calls] == ["create_repo", "upload_folder", "create_repo", "add_space_variable", "upload_folder"]
    assert calls["create_repo", "me/ns2-tiny"] == {"repo_type": "model", "private": True, "exist_ok": True}
    assert calls["create_repo", "me/ns2-demo"]["repo_type"] == "space"
    assert calls["create_repo", "me/ns2-demo"]["space_sdk"] == "gradio"
    model_files = calls["upload_folder", "me/ns2-tiny"]["files"]
    assert "README.md" in model_files and "model_index.json" in model_files and "model/model.safetensors" in model_files
    assert "app.py" in calls["upload_folder", "me/ns2-demo"]["files"]
    assert calls["add_space_variable", "me/ns2-demo"]["key"] == "NS2_MODEL"
    assert calls["add_space_variable", "me/ns2-demo"]["value"] == "me/ns2-tiny"
    assert not any("token" in kwargs for _, _, kwargs in api.calls)


def test_not_logged_in_uploads_nothing(pipeline_dir, capsys):
    api = FakeHfApi(logged_in=False)
    assert main(["--pipeline", str(pipeline_dir), "--repo-id", "me/ns2-tiny"], api=api) == 2
    assert api.calls == []
    assert "HF_TOKEN" in capsys.readouterr().err


def test_folder_without_model_index_is_refused(tmp_path, capsys):
    (tmp_path / "not-a-pipeline").mkdir()
    assert main(["--pipeline", str(tmp_path / "not-a-pipeline"), "--repo-id", "me/x", "--dry-run", str(tmp_path / "out")]) == 2
    assert "model_index.json" in capsys.readouterr().err
