"""Publish a trained pipeline (and optionally the demo Space) to the Hugging Face Hub.

    python training/push_to_hub.py --pipeline pretrained/ns2-tiny-en --repo-id user/ns2-tiny-en \
        [--private] [--space-repo-id user/ns2-demo] [--dry-run OUT_DIR]

What is uploaded is built first as plain folders, so a dry run shows exactly what the Hub will hold:

- model repo: the pipeline folder as `save_pretrained` wrote it (`model_index.json`, `model/`, `codec/`,
  `scheduler/`, ...) plus `README.md` = the repository's `model_card.md` (checked with `huggingface_hub.ModelCard`).
- Space repo: `demo/` (app.py, README.md with the Space header, requirements.txt, examples/) plus a copy of the
  `ns2_hf` package; the header's `models:` names the model repo and the Space variable `NS2_MODEL` points
  the app at it.

`--dry-run OUT_DIR` writes those folders to `OUT_DIR/model` (and `OUT_DIR/space`) and uploads nothing.
Otherwise they are built in a temporary folder and uploaded with `HfApi.create_repo` + `upload_folder`.
The token is the one `huggingface_hub` finds itself (`HF_TOKEN`, or `hf auth login`); this script never reads,
prints or writes it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

from huggingface_hub import HfApi, ModelCard, SpaceCard

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_CARD = REPO_ROOT / "model_card.md"
DEMO_DIR = REPO_ROOT / "demo"
PACKAGE_DIR = REPO_ROOT / "ns2_hf"
#: Model card metadata the Hub needs for the model page (pipeline widget, licence, search).
REQUIRED_CARD_FIELDS = ("license", "language", "pipeline_tag", "library_name", "tags", "datasets", "metrics")
#: Files never uploaded (build and editor leftovers).
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store", "screenshot.png")


class PublishError(ValueError):
    """Raised when the pipeline folder or the model card is not fit to publish."""


def load_model_card(path: Path = MODEL_CARD) -> ModelCard:
    """Read the model card and check it carries the metadata the Hub uses. Raises `PublishError`."""
    card = ModelCard.load(path, ignore_metadata_errors=False)
    metadata = card.data.to_dict()
    missing = [field for field in REQUIRED_CARD_FIELDS if not metadata.get(field)]
    if missing:
        raise PublishError(f"{path} lacks model card metadata {missing}.")
    if metadata["pipeline_tag"] != "text-to-speech":
        raise PublishError(f"{path}: pipeline_tag must be 'text-to-speech', got {metadata['pipeline_tag']!r}.")
    return card


def build_model_folder(pipeline_dir: Path, out_dir: Path, card_path: Path = MODEL_CARD) -> Path:
    """Copy the pipeline folder to `out_dir` and add the model card as `README.md`. Returns `out_dir`."""
    pipeline_dir = Path(pipeline_dir)
    if not (pipeline_dir / "model_index.json").is_file():
        raise PublishError(f"{pipeline_dir} is not a pipeline folder (no model_index.json); save one with `save_pretrained`.")
    card = load_model_card(card_path)
    shutil.copytree(pipeline_dir, out_dir, ignore=IGNORED)
    card.save(out_dir / "README.md")
    return out_dir


def build_space_folder(out_dir: Path, model_repo_id: str) -> Path:
    """Copy the demo and the `ns2_hf` package to `out_dir`; link the model in the Space header. Returns `out_dir`."""
    shutil.copytree(DEMO_DIR, out_dir, ignore=IGNORED)
    shutil.copytree(PACKAGE_DIR, out_dir / "ns2_hf", ignore=IGNORED)
    card = SpaceCard.load(DEMO_DIR / "README.md")
    card.data.models = [model_repo_id]
    card.save(out_dir / "README.md")
    return out_dir


def publish(
    api: HfApi, model_dir: Path, repo_id: str, private: bool, space_dir: Optional[Path] = None, space_repo_id: Optional[str] = None
) -> None:
    """Create the repos (if missing) and upload the built folders; point the Space at the model."""
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=model_dir, commit_message="Upload NS2 pipeline")
    print(f"[push_to_hub] model: https://huggingface.co/{repo_id}")
    if space_repo_id is None:
        return
    api.create_repo(space_repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    api.add_space_variable(space_repo_id, "NS2_MODEL", repo_id, description="pipeline repo the demo loads")
    api.upload_folder(repo_id=space_repo_id, repo_type="space", folder_path=space_dir, commit_message="Upload NS2 demo")
    print(f"[push_to_hub] space: https://huggingface.co/spaces/{space_repo_id}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Publish an NS2 pipeline (and its demo Space) to the Hugging Face Hub.")
    parser.add_argument("--pipeline", required=True, type=Path, help="pipeline folder written by save_pretrained")
    parser.add_argument("--repo-id", required=True, help="model repo, user/name")
    parser.add_argument("--private", action="store_true", help="create the repos private")
    parser.add_argument("--space-repo-id", default=None, help="also publish the Gradio demo to this Space, user/name")
    parser.add_argument("--dry-run", type=Path, default=None, metavar="OUT_DIR", help="only build the folders in OUT_DIR")
    return parser


def main(argv=None, api: Optional[HfApi] = None) -> int:
    """Build the upload folders and upload them (or only build them, with `--dry-run`). `api` defaults to `HfApi()`."""
    args = build_parser().parse_args(argv)
    if args.dry_run is not None and args.dry_run.exists() and any(args.dry_run.iterdir()):
        print(f"[push_to_hub] error: --dry-run folder {args.dry_run} is not empty.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        root = args.dry_run if args.dry_run is not None else Path(scratch)
        try:
            model_dir = build_model_folder(args.pipeline, root / "model")
        except PublishError as error:
            print(f"[push_to_hub] error: {error}", file=sys.stderr)
            return 2
        space_dir = build_space_folder(root / "space", args.repo_id) if args.space_repo_id else None
        if args.dry_run is not None:
            print(f"[push_to_hub] dry run: model folder {model_dir}" + (f", space folder {space_dir}" if space_dir else ""))
            return 0
        api = api or HfApi()
        try:
            user = api.whoami()["name"]
        except OSError as error:  # no token found, or the Hub rejected it
            print(f"[push_to_hub] error: not logged in to the Hub ({type(error).__name__}); set HF_TOKEN or run "
                  "`hf auth login`.", file=sys.stderr)
            return 2
        print(f"[push_to_hub] uploading as {user}")
        publish(api, model_dir, args.repo_id, args.private, space_dir, args.space_repo_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
