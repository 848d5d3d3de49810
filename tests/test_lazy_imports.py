"""`import ns2_hf` is light (`ns2_hf.lazy`): names are imported on first use, every exported name resolves,
and importing a model subpackage registers it with transformers' Auto classes."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_import_loads_no_heavy_library():
    printed = run_python(
        "import sys, ns2_hf, ns2_hf.audio, ns2_hf.text, ns2_hf.pipelines; "
        "print(sorted(m for m in ('torch', 'transformers', 'diffusers', 'librosa', 'gruut') if m in sys.modules))"
    )
    assert printed == "[]"


def test_every_exported_name_resolves_and_registers_auto_classes():
    printed = run_python(
        "import ns2_hf, ns2_hf.audio, ns2_hf.text, ns2_hf.pipelines\n"
        "for package in (ns2_hf, ns2_hf.audio, ns2_hf.text, ns2_hf.pipelines):\n"
        "    for name in package.__all__:\n"
        "        assert getattr(package, name) is not None, name\n"
        "        assert name in dir(package), name\n"
        "from transformers import AutoConfig, AutoTokenizer\n"
        "from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING\n"
        "print(AutoConfig.for_model('ns2').__class__.__name__, TOKENIZER_MAPPING[ns2_hf.NS2Config].__name__)"
    )
    assert printed == "NS2Config NS2PhonemeTokenizer"


def test_unknown_names_raise_attribute_error():
    import ns2_hf

    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        ns2_hf.NoSuchThing  # noqa: B018
    assert ns2_hf.NS2Pipeline is ns2_hf.pipelines.NS2Pipeline


def test_the_first_phonemize_defers_dateparser_until_gruut_uses_it():
    """gruut imports dateparser at module level (0.6 s of regex compiling); the front end defers it: after a
    sentence is phonemized it is still a stand-in, and the first attribute gruut (or anyone) looks up on it
    imports the real module and answers from it."""
    printed = run_python(
        "import sys, datetime\n"
        "from ns2_hf.text.g2p import phonemize\n"
        "assert phonemize('Hello there.')[:3] == ['h', 'ɛ', 'l']\n"
        "print(type(sys.modules['dateparser']).__name__, 'dateparser.date' in sys.modules)\n"
        "import gruut.text_processor as tp\n"
        "parsed = tp.dateparser.parse('2020-05-04', languages=['en'])\n"
        "print(parsed == datetime.datetime(2020, 5, 4), type(sys.modules['dateparser']).__name__)"
    )
    assert printed.splitlines() == ["_DeferredModule False", "True module"]
