"""Configuration of the built-in phoneme aligner."""

from __future__ import annotations

from transformers import PreTrainedConfig


class NS2AlignerConfig(PreTrainedConfig):
    """Configuration of :class:`NS2AlignerModel`, an unsupervised phoneme-to-frame aligner.

    NaturalSpeech 2 took phoneme durations from an external aligner; the paper gives no sizes.
    This one follows RAD-TTS's alignment encoder ("One TTS Alignment To Rule Them All", Badlani
    et al. 2022): the defaults are that paper's widths, and :meth:`tiny` is a CPU-fast size.

    Args:
        vocab_size: number of phoneme token ids.
        hidden_size: width of the text encoder (embedding and convolutions).
        num_text_layers: convolution layers of the text encoder.
        text_kernel_size: their kernel size. 1 (no context) by default: with wider text context
            the keys learn their neighbours' identity and alignments shifted by a token fit the
            forward-sum loss as well as the true one (15 % vs 83 % of festival boundaries within
            2 frames after 100 steps of the tiny size).
        attention_dim: width of the keys and queries whose distances score frame-token pairs.
        dropout: dropout in the text encoder.
        n_mels: mel bands of the input features.
        sampling_rate: audio rate in Hz; must equal the codec's.
        hop_length: samples per frame; must equal the codec's, so that durations count codec frames.
        n_fft: FFT size of the mel features.
        attention_temperature: scale of the negative squared distance before the softmax over
            tokens (RAD-TTS uses 0.0005 on raw log-mels; the mel encoder here normalises its input,
            so distances are smaller).
        blank_logprob: log-probability given to the CTC blank in the forward-sum loss.
        prior_scaling: scale of the beta-binomial alignment prior (larger = closer to the
            diagonal); 0 disables it.
        binarization_start_step: training step from which the binarization loss is added.
        binarization_loss_weight: its weight in the total loss.
    """

    model_type = "ns2_aligner"

    def __init__(
        self,
        vocab_size: int = 256,
        hidden_size: int = 512,
        num_text_layers: int = 3,
        text_kernel_size: int = 1,
        attention_dim: int = 80,
        dropout: float = 0.1,
        n_mels: int = 80,
        sampling_rate: int = 16000,
        hop_length: int = 200,
        n_fft: int = 1024,
        attention_temperature: float = 0.05,
        blank_logprob: float = -1.0,
        prior_scaling: float = 1.0,
        binarization_start_step: int = 6000,
        binarization_loss_weight: float = 1.0,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_text_layers = num_text_layers
        self.text_kernel_size = text_kernel_size
        self.attention_dim = attention_dim
        self.dropout = dropout
        self.n_mels = n_mels
        self.sampling_rate = sampling_rate
        self.hop_length = hop_length
        self.n_fft = n_fft
        self.attention_temperature = attention_temperature
        self.blank_logprob = blank_logprob
        self.prior_scaling = prior_scaling
        self.binarization_start_step = binarization_start_step
        self.binarization_loss_weight = binarization_loss_weight
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    @classmethod
    def tiny(cls, **kwargs) -> "NS2AlignerConfig":
        """A small aligner that trains on CPU in minutes."""
        sizes = dict(hidden_size=96, num_text_layers=2, attention_dim=48, binarization_start_step=200)
        sizes.update(kwargs)
        return cls(**sizes)
