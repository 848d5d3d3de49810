"""Audio input handling and features: loading/validation, silence trimming, mel spectrograms, pitch.
Each name is imported on first use (`ns2_hf.lazy`): loading a prompt needs neither torch nor parselmouth."""

from ..lazy import lazy_exports

_EXPORTS = {
    "AudioInputError": ".io",
    "check_waveform": ".io",
    "extract_pitch": ".pitch",
    "load_audio": ".io",
    "mel_filterbank": ".mel",
    "mel_spectrogram": ".mel",
    "trim_silence": ".silence",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
