"""Codec training data beyond the prepared corpus: untranscribed recordings and voice augmentation.

The codec needs no transcripts, so any speech helps it generalise to voices it never heard:
`UntranscribedAudio` adds every audio file under some folders (e.g. the real recordings that
`scripts/fetch_real_speech.py` collects) to the training set, and `augment` perturbs each training
crop so that 16 corpus voices become many (ours; SoundStream/EnCodec train on thousands of real
voices instead):

- speed perturbation: the crop is resampled by a factor in `speed`, which moves pitch, formants
  (vocal-tract length) and tempo together, as in Kaldi's speed perturbation;
- loudness: a gain in `gain_db`;
- mild noise: white noise at an SNR in `noise_snr_db`.

`CodecTrainingCrops` is train_codec.py's `collate_fn`: it crops, augments and (for the harmonic phase) tracks
the pitch of each batch in the DataLoader workers, beside the training step, drawing from the batch's own seed
(`training.data.SeededBatches`), so a resumed run crops and augments exactly as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ns2_hf.audio.io import load_audio

from training.data import AUDIO, BATCH_SEED, ID, NUM_FRAMES, SPEAKER_ID, collate_batch, num_frames_for, random_segments

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class UntranscribedAudio(torch.utils.data.Dataset):
    """Every audio file under `folders` (sorted), resampled to `sampling_rate`, mono; items look like
    `PreparedDataset(..., columns=("audio",))` items (`id`, `speaker_id` = the folder name, `num_frames`,
    `audio` `(T,)` float32), so `collate_batch` batches them with the corpus. The waveforms are read once and held
    in memory: meant for minutes of extra speech, not a corpus (prepare a corpus with `prepare_dataset.py`)."""

    def __init__(self, folders: Sequence[str], sampling_rate: int, hop_length: int):
        self.paths = sorted(
            path for folder in folders for path in Path(folder).rglob("*") if path.suffix.lower() in AUDIO_EXTENSIONS
        )
        if not self.paths:
            raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {list(folders)}.")
        self.waveforms = [load_audio(str(path), target_sampling_rate=sampling_rate, name=str(path)) for path in self.paths]
        self.hop_length = hop_length

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Dict[str, object]:
        waveform = self.waveforms[index]
        return {
            ID: self.paths[index].stem,
            SPEAKER_ID: self.paths[index].parent.name,
            NUM_FRAMES: num_frames_for(len(waveform), self.hop_length),
            AUDIO: torch.from_numpy(np.asarray(waveform, dtype=np.float32)),
        }


def augment(
    audio: torch.Tensor,
    audio_mask: torch.Tensor,
    sampling_rate: int,
    probability: float = 0.8,
    speed: Optional[Sequence[float]] = (0.85, 1.15),
    gain_db: Optional[Sequence[float]] = (-10.0, 6.0),
    noise_snr_db: Optional[Sequence[float]] = (25.0, 50.0),
    rng=np.random,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Perturb each crop of a batch (with `probability`; the rest pass unchanged).

    Args:
        audio: `(batch, samples)` crops; `audio_mask` `(batch, samples)` bool, True on valid samples.
        sampling_rate: their rate.
        probability: chance that a crop is augmented at all.
        speed, gain_db, noise_snr_db: uniform ranges of each perturbation (None switches it off).
        rng: a `np.random.RandomState` to draw from (default: numpy's global one).

    Returns:
        `(batch, samples)` augmented crops and their mask (a sped-up crop is shorter: its tail is masked);
        peaks are kept within [-1, 1].
    """
    import librosa

    augmented, masks = audio.clone(), audio_mask.clone()
    for row in range(audio.shape[0]):
        if rng.rand() >= probability:
            continue
        length = int(audio_mask[row].sum())
        waveform = audio[row, :length].cpu().numpy().astype(np.float32)
        if speed is not None and length > 1:
            factor = rng.uniform(*speed)
            waveform = librosa.resample(waveform, orig_sr=sampling_rate, target_sr=round(sampling_rate / factor),
                                        res_type="soxr_hq")[: audio.shape[1]]
        if gain_db is not None:
            waveform = waveform * 10.0 ** (rng.uniform(*gain_db) / 20.0)
        if noise_snr_db is not None and waveform.size:
            power = float(np.mean(waveform**2))
            noise_power = power / 10.0 ** (rng.uniform(*noise_snr_db) / 10.0)
            waveform = waveform + np.sqrt(noise_power) * rng.randn(waveform.size).astype(np.float32)
        peak = float(np.abs(waveform).max()) if waveform.size else 0.0
        if peak > 1.0:
            waveform = waveform / peak
        augmented[row] = 0.0
        augmented[row, : waveform.size] = torch.from_numpy(waveform.astype(np.float32))
        masks[row] = False
        masks[row, : waveform.size] = True
    return augmented, masks


def crop_pitch(audio: torch.Tensor, audio_mask: torch.Tensor, sampling_rate: int, hop_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pitch of each crop at the codec hop (Praat, `ns2_hf.audio.pitch.extract_pitch` on its valid samples), for
    training the Fourier decoder with the harmonic phase (recipe key `harmonic_phase`).

    Args:
        audio: `(batch, samples)` crops; `audio_mask` `(batch, samples)` bool, True on valid samples.

    Returns:
        `f0` `(batch, frames)` Hz, positive everywhere (interpolated across unvoiced frames), and `voiced`
        `(batch, frames)` bool (False on padding), `frames = ceil(samples / hop_length)`.
    """
    from ns2_hf.audio.pitch import extract_pitch

    frames = -(-audio.shape[1] // hop_length)
    log_f0, voiced = np.zeros((audio.shape[0], frames), np.float32), np.zeros((audio.shape[0], frames), bool)
    for row in range(audio.shape[0]):
        waveform = audio[row, : int(audio_mask[row].sum())].cpu().numpy().astype(np.float32)
        log_f0[row], voiced[row] = extract_pitch(waveform, sampling_rate, hop_length, num_frames=frames)
    return torch.from_numpy(log_f0).exp().to(audio.device), torch.from_numpy(voiced).to(audio.device)


class CodecTrainingCrops:
    """The `collate_fn` of codec training: pads a batch of `SeededItems`, cuts a random window of
    `segment_samples` from each utterance (`random_segments`), perturbs it (`augment` with `augmentation`'s
    ranges; None: no augmentation) and, with `harmonic_phase`, tracks the crops' pitch (`crop_pitch`). Every draw
    comes from the batch's own seed, so it does not matter which worker runs it.

    Returns the batch of `collate_batch` with `audio` `(batch, segment_samples)` and `audio_mask` replaced by the
    crops and, with `harmonic_phase`, `f0` and `voiced` `(batch, frames)` of `crop_pitch`.
    """

    def __init__(self, segment_samples: int, sampling_rate: int, hop_length: int, augmentation: Optional[dict] = None,
                 harmonic_phase: bool = False):
        self.segment_samples = segment_samples
        self.sampling_rate = sampling_rate
        self.hop_length = hop_length
        self.augmentation = augmentation
        self.harmonic_phase = harmonic_phase

    def __call__(self, items) -> Dict[str, object]:
        batch_seed = items[0][BATCH_SEED]
        batch = collate_batch(items)
        audio, audio_mask = random_segments(batch[AUDIO], batch["audio_mask"], self.segment_samples,
                                            torch.Generator().manual_seed(batch_seed))
        if self.augmentation:
            audio, audio_mask = augment(audio, audio_mask, self.sampling_rate, rng=np.random.RandomState(batch_seed),
                                        **self.augmentation)
        batch[AUDIO], batch["audio_mask"] = audio, audio_mask
        if self.harmonic_phase:
            batch["f0"], batch["voiced"] = crop_pitch(audio, audio_mask, self.sampling_rate, self.hop_length)
        return batch
