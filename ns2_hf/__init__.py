"""ns2-hf: NaturalSpeech 2 zero-shot text-to-speech for the Hugging Face ecosystem."""

__version__ = "0.1.0"
