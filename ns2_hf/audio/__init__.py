"""Audio input handling and features: loading/validation, mel spectrograms, pitch."""

from .io import AudioInputError, check_waveform, load_audio
from .mel import mel_filterbank, mel_spectrogram
from .pitch import extract_pitch

__all__ = ["AudioInputError", "check_waveform", "extract_pitch", "load_audio", "mel_filterbank", "mel_spectrogram"]
