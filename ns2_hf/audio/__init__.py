"""Audio input handling and features: loading/validation, mel spectrograms, pitch."""

from .io import AudioInputError, check_waveform, load_audio
from .mel import mel_filterbank, mel_spectrogram

__all__ = ["AudioInputError", "check_waveform", "load_audio", "mel_filterbank", "mel_spectrogram"]
