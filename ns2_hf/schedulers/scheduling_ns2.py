"""The NaturalSpeech 2 diffusion scheduler: a VP SDE with linear β and a data-predicting model.

NaturalSpeech 2 diffuses the codec latent z with the variance-preserving SDE

    dz = −½ β(t) z dt + √β(t) dw,   t ∈ [0, 1],   β(t) = β_min + (β_max − β_min) t,

whose marginal is z_t = α_t z_0 + σ_t ε (see :func:`vp_sde_marginal`). The denoiser predicts the
clean latent ẑ₀ (data prediction); the score it implies is ∇ log p(z_t) ≈ −(z_t − α_t ẑ₀) / σ_t².
Generation starts from N(0, τ⁻¹ I) at t = 1 and integrates the probability-flow ODE

    dz/dt = −½ β(t) [z + ∇ log p(z_t)]

backwards to t ≈ 0 with Euler steps (the paper: τ = 1.2², 150 steps), or the reverse SDE with
Euler–Maruyama. Voice conversion runs the same ODE forwards, from a latent to an informative z₁.

This module is the one place the SDE lives: β(t), α_t / σ_t, τ → σ and the training side (time draws,
noising, the noise implied by ẑ₀, the SNR) are here; `NS2Model.forward` takes an `NS2Scheduler` to train
with, and the few-step solver (`scheduling_ns2_dpmsolver.py`) imports the SDE from here.
"""

import math
from dataclasses import dataclass

import torch
from diffusers import ConfigMixin, SchedulerMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

SOLVERS = ("ode", "sde")
#: β(0) and β(1) of the linear noise rate (the paper does not state them; reimplementations use β_min 0.05 or 0.1
#: and β_max 20), and the paper's τ = 1.2²: the defaults of every NS2 scheduler.
DEFAULT_BETA_MIN, DEFAULT_BETA_MAX, DEFAULT_TEMPERATURE = 0.05, 20.0, 1.44


def vp_sde_beta(t: torch.Tensor | float, beta_min: float, beta_max: float) -> torch.Tensor:
    """Noise rate of the VP SDE, linear in time: β(t) = β_min + (β_max − β_min) t.

    Args:
        t: diffusion time in [0, 1], any shape (a float becomes a 0-d tensor).
        beta_min: β(0).
        beta_max: β(1).

    Returns:
        β(t), the shape of `t`.
    """
    return beta_min + (beta_max - beta_min) * torch.as_tensor(t)


def vp_sde_marginal(t: torch.Tensor | float, beta_min: float, beta_max: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean scale and standard deviation of the VP SDE marginal: z_t = α_t z_0 + σ_t ε.

    α_t = exp(−½ ∫₀ᵗ β(s) ds) = exp(−½ (β_min t + ½ (β_max − β_min) t²)) and σ_t = √(1 − α_t²)
    (computed with `expm1`, so σ_t stays accurate for t near 0).

    Args:
        t: diffusion time in [0, 1], any shape (a float or integer becomes a float tensor).
        beta_min: β(0) of the linear schedule.
        beta_max: β(1) of the linear schedule.

    Returns:
        `(alpha_t, sigma_t)`, each the shape of `t`.
    """
    t = torch.as_tensor(t)
    if not t.is_floating_point():
        t = t.float()
    log_alpha = -0.5 * (beta_min * t + 0.5 * (beta_max - beta_min) * t**2)
    alpha_t = torch.exp(log_alpha)
    sigma_t = torch.sqrt(-torch.expm1(2.0 * log_alpha))
    return alpha_t, sigma_t


def check_beta_schedule(beta_min: float, beta_max: float) -> None:
    """Raise `ValueError` unless 0 ≤ β_min ≤ β_max and β_max > 0 (a VP SDE the schedulers can solve)."""
    if not 0.0 <= beta_min <= beta_max or beta_max <= 0.0:
        raise ValueError(f"need 0 <= beta_min <= beta_max and beta_max > 0, got {beta_min=}, {beta_max=}")


def timestep_index(times: list | None, timestep: float | torch.Tensor) -> int:
    """Index of `timestep` in a scheduler's `times` (the floats of its `timesteps`), within 1e-6.

    Raises:
        ValueError: before `set_timesteps` (`times` None), for a tensor of several times, or for a time not
            in the schedule.
    """
    if times is None:
        raise ValueError("call `set_timesteps(num_inference_steps)` before stepping")
    if isinstance(timestep, torch.Tensor):
        if timestep.numel() != 1:
            raise ValueError(f"timestep must be a single time from `scheduler.timesteps`, got shape {tuple(timestep.shape)}")
        timestep = timestep.item()
    distances = [abs(t - float(timestep)) for t in times]
    index = min(range(len(distances)), key=distances.__getitem__)
    if distances[index] > 1e-6:
        raise ValueError(f"timestep {timestep} is not in the schedule set by `set_timesteps`")
    return index


def temperature_to_sigma(temperature: float) -> float:
    """Standard deviation τ^(−½) of the initial noise N(0, τ⁻¹ I) for the temperature τ.

    Raises:
        ValueError: unless τ is a finite number > 0 (τ = 0 would divide by zero, τ < 0 give a
            complex standard deviation).
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature (τ, the inverse initial noise variance) must be a finite number > 0, got {temperature!r}")
    return float(temperature) ** -0.5


@dataclass
class NS2SchedulerOutput(BaseOutput):
    """Output of :meth:`NS2Scheduler.step` and :meth:`NS2Scheduler.forward_step`.

    Args:
        prev_sample (`torch.Tensor`, the shape of the sample, e.g. `(batch, latent_dim, frames)`):
            The sample at the next time of the loop: the less noisy z for `step` (or ẑ₀ itself at
            the last step), the noisier z for `forward_step`. Feed it to the next model call.
        pred_original_sample (`torch.Tensor`, same shape):
            The clean-latent estimate ẑ₀ the step used (the model output), for previews or guidance.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class NS2Scheduler(SchedulerMixin, ConfigMixin):
    """The NaturalSpeech 2 VP SDE and its Euler solver, for a model that predicts the clean latent ẑ₀.

    This class is the one owner of the SDE: sampling (`step`, `forward_step`) and training
    (`sample_timesteps`, `add_noise`, `noise_from_data_prediction`, `snr`) read β, `t_min` and
    `t_eps` from its config, so a model trained with a scheduler samples the same SDE when the
    saved scheduler is loaded with it.

    Time is continuous: `timesteps` holds floats t ∈ [t_min, 1], and the model is called with t
    itself (not an integer index). `set_timesteps(N)` spaces N times evenly from 1 down to `t_min`.
    `step` at `timesteps[i]` takes one Euler step to `timesteps[i + 1]`; at the last time
    (`t_min`) the remaining stretch to t = 0 is taken by returning ẑ₀ itself, as score-SDE
    samplers do in their final denoising step. So N steps cost N model calls, and the last sample
    carries no leftover noise.

    Sampling loop (a pipeline writes exactly this)::

        scheduler.set_timesteps(150)
        latents = randn_tensor(shape, generator=generator) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            z0_hat = model(scheduler.scale_model_input(latents, t), t)
            latents = scheduler.step(z0_hat, t, latents, generator=generator).prev_sample

    Training step (what `NS2Model.forward` does with the scheduler it is given)::

        t = scheduler.sample_timesteps(batch_size)                 # t ~ U(t_eps, 1)
        noisy = scheduler.add_noise(z0, noise, t)                  # z_t = α_t z₀ + σ_t ε
        z0_hat = model(noisy, t)
        noise_hat = scheduler.noise_from_data_prediction(z0_hat, noisy, t)

    Forward loop for voice conversion (latent → informative noise z₁), after `set_timesteps(N)`::

        latents = source_latents          # taken as z at t_min
        for t in scheduler.forward_timesteps:
            z0_hat = model(latents, t)
            latents = scheduler.forward_step(z0_hat, t, latents).prev_sample
        # latents is now z₁; run the sampling loop from it without `init_noise_sigma`.

    `forward_timesteps` is `timesteps` reversed without its first entry (N − 1 times from t_min
    up): each forward step mirrors one reverse Euler step, the last one lands on t = 1.

    There is no `num_train_timesteps`: training samples t uniformly in [t_eps, 1] and
    :func:`vp_sde_marginal` gives α_t, σ_t for any t.

    Args:
        beta_min (`float`, defaults to 0.05):
            β(0) of the linear noise rate (the paper does not state it; reimplementations use
            0.05 or 0.1).
        beta_max (`float`, defaults to 20.0):
            β(1) of the linear noise rate.
        solver (`str`, defaults to `"ode"`):
            `"ode"`: Euler steps of the probability-flow ODE (the paper's choice, deterministic).
            `"sde"`: Euler–Maruyama steps of the reverse SDE (noise from the `generator` of `step`).
        temperature (`float`, defaults to 1.44):
            τ: the initial noise is drawn from N(0, τ⁻¹ I), i.e. standard deviation τ^(−½). The
            paper's "τ = 1.2²" is this value; τ > 1 narrows the start and the generated spread.
        t_min (`float`, defaults to 1e-4):
            The smallest time sampling evaluates the model at (σ_t is 0 at t = 0, where the score
            is undefined); also the time the forward ODE starts from.
        t_eps (`float`, defaults to 1e-5):
            Training draws t ~ U(t_eps, 1) (`sample_timesteps`); keeps σ_t away from 0.
    """

    order = 1

    @register_to_config
    def __init__(
        self,
        beta_min: float = DEFAULT_BETA_MIN,
        beta_max: float = DEFAULT_BETA_MAX,
        solver: str = "ode",
        temperature: float = DEFAULT_TEMPERATURE,
        t_min: float = 1e-4,
        t_eps: float = 1e-5,
    ):
        check_beta_schedule(beta_min, beta_max)
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if not 0.0 < t_min < 1.0:
            raise ValueError(f"t_min must lie in (0, 1), got {t_min}")
        if not 0.0 < t_eps < 1.0:
            raise ValueError(f"t_eps must lie in (0, 1), got {t_eps}")
        # standard deviation of the initial noise N(0, τ⁻¹ I)
        self.init_noise_sigma = temperature_to_sigma(temperature)
        self.num_inference_steps: int | None = None
        self.timesteps: torch.Tensor | None = None
        self._times: list | None = None

    @property
    def stochastic(self) -> bool:
        """True for the reverse SDE: `step` then adds noise (from `generator` or `variance_noise`)."""
        return self.config.solver == "sde"

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """Space the sampling times evenly from 1 down to `t_min` (run before inference).

        Sets `timesteps` `(num_inference_steps,)`, float32, decreasing from 1 to `t_min`, and
        `forward_timesteps` `(num_inference_steps − 1,)`, increasing from `t_min`.

        Args:
            num_inference_steps: model calls per sample, at least 2 (one Euler step and the final
                ẑ₀ step). The paper uses 150.
            device: where to put the timestep tensors.
        """
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 2:
            raise ValueError(f"num_inference_steps must be an integer >= 2, got {num_inference_steps!r}")
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.linspace(1.0, self.config.t_min, num_inference_steps, dtype=torch.float32, device=device)
        self._times = self.timesteps.tolist()

    @property
    def forward_timesteps(self) -> torch.Tensor:
        """Times of the forward (latent → noise) ODE loop: `timesteps` reversed, without t = 1.

        Shape `(num_inference_steps − 1,)`, increasing from `t_min`; `forward_step` at the last
        one lands on t = 1.
        """
        self._check_timesteps_set()
        return self.timesteps.flip(0)[:-1]

    def scale_model_input(self, sample: torch.Tensor, timestep: float | torch.Tensor | None = None) -> torch.Tensor:
        """Return `sample` unchanged: the NS2 denoiser takes z_t as it is (kept for the diffusers
        pipeline contract)."""
        return sample

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        variance_noise: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> NS2SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One reverse-time step from `timestep` to the next entry of `timesteps`.

        ODE: z ← z + (t_next − t) · (−½ β(t) [z + score]).
        SDE: z ← z + (t_next − t) · (−½ β(t) z − β(t) score) + √(β(t) (t − t_next)) · ξ, ξ ~ N(0, I).
        with score = −(z − α_t ẑ₀) / σ_t². At the last timestep (`t_min`) the step returns ẑ₀.

        Args:
            model_output: ẑ₀, the model's clean-latent prediction, the shape of `sample`.
            timestep: the current time, an entry of `timesteps` (float or 0-d tensor).
            sample: z_t, e.g. `(batch, latent_dim, frames)`.
            generator: random source of the SDE noise ξ (unused by the ODE solver); a list gives
                one generator per batch item.
            variance_noise: ξ itself, the shape of `sample` (instead of drawing it from
                `generator`; a pipeline whose batch items have different lengths draws each
                item's noise for its own frames, so a batch equals its items run alone).
            return_dict: return an :class:`NS2SchedulerOutput` instead of a tuple.

        Returns:
            :class:`NS2SchedulerOutput` or `(prev_sample, pred_original_sample)`.
        """
        index = self._index_for_timestep(timestep)
        self._check_shapes(model_output, sample)
        if index == len(self._times) - 1:
            prev_sample = model_output
        else:
            t, t_next = self._times[index], self._times[index + 1]
            beta = float(vp_sde_beta(t, self.config.beta_min, self.config.beta_max))
            score = self._score(model_output, t, sample)
            dt = t_next - t
            if self.config.solver == "ode":
                prev_sample = sample + dt * (-0.5 * beta) * (sample + score)
            else:
                if variance_noise is None:
                    variance_noise = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
                else:
                    self._check_shapes(variance_noise, sample, "variance_noise")
                drift = -0.5 * beta * sample - beta * score
                prev_sample = sample + dt * drift + (beta * -dt) ** 0.5 * variance_noise
        if not return_dict:
            return prev_sample, model_output
        return NS2SchedulerOutput(prev_sample=prev_sample, pred_original_sample=model_output)

    def forward_step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        return_dict: bool = True,
    ) -> NS2SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One forward-time Euler step of the probability-flow ODE (latent → informative noise).

        z ← z + (t_next − t) · (−½ β(t) [z + score]), score = −(z − α_t ẑ₀) / σ_t², where t_next
        is the next larger time of the schedule (1 after the last entry of `forward_timesteps`).
        The deterministic ODE makes the map invertible: sampling from its result with the same
        model returns (up to the Euler error) to the start; voice conversion swaps the prompt.

        Args:
            model_output: ẑ₀ predicted at (`sample`, `timestep`), the shape of `sample`.
            timestep: the current time, an entry of `forward_timesteps`.
            sample: z_t, e.g. `(batch, latent_dim, frames)`.
            return_dict: return an :class:`NS2SchedulerOutput` instead of a tuple.

        Returns:
            :class:`NS2SchedulerOutput` (its `prev_sample` is the noisier z) or
            `(prev_sample, pred_original_sample)`.
        """
        index = self._index_for_timestep(timestep)
        if index == 0:
            raise ValueError("forward_step at t = 1: the forward ODE ends there; loop over `forward_timesteps`")
        self._check_shapes(model_output, sample)
        t, t_next = self._times[index], self._times[index - 1]
        beta = float(vp_sde_beta(t, self.config.beta_min, self.config.beta_max))
        score = self._score(model_output, t, sample)
        next_sample = sample + (t_next - t) * (-0.5 * beta) * (sample + score)
        if not return_dict:
            return next_sample, model_output
        return NS2SchedulerOutput(prev_sample=next_sample, pred_original_sample=model_output)

    # --- training: the forward process and the loss terms' ingredients --------------------------

    def sample_timesteps(
        self, batch_size: int, generator: torch.Generator | None = None, device: str | torch.device | None = None
    ) -> torch.Tensor:
        """Training diffusion times t ~ U(t_eps, 1), `(batch_size,)` float32 on `device` (drawn on
        the generator's device)."""
        draw = torch.rand(batch_size, generator=generator, device=generator.device if generator is not None else device)
        return (self.config.t_eps + (1.0 - self.config.t_eps) * draw).to(device)

    def marginal(self, timesteps: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """`(alpha_t, sigma_t)` of z_t = α_t z₀ + σ_t ε under this scheduler's β, each the shape of
        `timesteps` (see :func:`vp_sde_marginal`)."""
        return vp_sde_marginal(timesteps, self.config.beta_min, self.config.beta_max)

    def snr(self, timesteps: torch.Tensor | float) -> torch.Tensor:
        """Signal-to-noise ratio α_t² / σ_t², the shape of `timesteps` (for loss weighting)."""
        alpha_t, sigma_t = self.marginal(timesteps)
        return (alpha_t / sigma_t) ** 2

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor | float
    ) -> torch.Tensor:
        """Sample the forward process: z_t = α_t z₀ + σ_t ε.

        Args:
            original_samples: z₀, `(batch, ...)`, e.g. `(batch, latent_dim, frames)`.
            noise: ε ~ N(0, I), the shape of `original_samples`.
            timesteps: t ∈ [0, 1], a scalar or one time per batch item `(batch,)`.

        Returns:
            z_t, the shape and dtype of `original_samples`.
        """
        if noise.shape != original_samples.shape:
            raise ValueError(f"noise {tuple(noise.shape)} and samples {tuple(original_samples.shape)} differ in shape")
        alpha_t, sigma_t = self.marginal(self._broadcast_timesteps(timesteps, original_samples))
        dtype = original_samples.dtype
        return alpha_t.to(dtype) * original_samples + sigma_t.to(dtype) * noise

    def noise_from_data_prediction(
        self, model_output: torch.Tensor, sample: torch.Tensor, timesteps: torch.Tensor | float
    ) -> torch.Tensor:
        """The noise ε̂ = (z_t − α_t ẑ₀) / σ_t that a clean-latent prediction ẑ₀ implies at z_t.

        The score implied by ẑ₀ is −ε̂ / σ_t; the training score loss compares ε̂ with the true ε.

        Args:
            model_output: ẑ₀, the shape of `sample`.
            sample: z_t, `(batch, ...)`.
            timesteps: t ∈ [0, 1], a scalar or `(batch,)`.

        Returns:
            ε̂, the shape and dtype of `sample`.
        """
        self._check_shapes(model_output, sample)
        alpha_t, sigma_t = self.marginal(self._broadcast_timesteps(timesteps, sample))
        dtype = sample.dtype
        return (sample - alpha_t.to(dtype) * model_output) / sigma_t.to(dtype)

    # --- helpers ------------------------------------------------------------------------------

    def _score(self, model_output: torch.Tensor, t: float, sample: torch.Tensor) -> torch.Tensor:
        """∇ log p(z_t) implied by the data prediction: −ε̂ / σ_t = −(z_t − α_t ẑ₀) / σ_t²."""
        _, sigma_t = self.marginal(torch.tensor(t, dtype=torch.float64))
        noise = self.noise_from_data_prediction(model_output, sample, torch.tensor(t, dtype=torch.float64))
        return -noise / float(sigma_t)

    @staticmethod
    def _broadcast_timesteps(timesteps: torch.Tensor | float, samples: torch.Tensor) -> torch.Tensor:
        """A scalar time, or one per batch item `(batch,)` reshaped to `(batch, 1, ...)` (float, in [0, 1])."""
        timesteps = torch.as_tensor(timesteps, device=samples.device)
        if not timesteps.is_floating_point():
            timesteps = timesteps.float()
        if timesteps.ndim == 1 and timesteps.shape[0] == samples.shape[0]:
            timesteps = timesteps.reshape(-1, *([1] * (samples.ndim - 1)))
        elif timesteps.ndim != 0:
            raise ValueError(
                f"timesteps must be a scalar or have shape (batch,) = ({samples.shape[0]},), got {tuple(timesteps.shape)}"
            )
        if ((timesteps < 0) | (timesteps > 1)).any():
            raise ValueError("timesteps must lie in [0, 1]")
        return timesteps

    def _index_for_timestep(self, timestep: float | torch.Tensor) -> int:
        return timestep_index(self._times, timestep)

    def _check_timesteps_set(self) -> None:
        if self.timesteps is None:
            raise ValueError("call `set_timesteps(num_inference_steps)` before stepping")

    @staticmethod
    def _check_shapes(model_output: torch.Tensor, sample: torch.Tensor, name: str = "model_output (ẑ₀)") -> None:
        if model_output.shape != sample.shape:
            raise ValueError(f"{name} {tuple(model_output.shape)} and sample {tuple(sample.shape)} differ in shape")
