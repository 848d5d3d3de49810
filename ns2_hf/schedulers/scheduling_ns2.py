"""The NaturalSpeech 2 diffusion scheduler: a VP SDE with linear β and a data-predicting model.

NaturalSpeech 2 diffuses the codec latent z with the variance-preserving SDE

    dz = −½ β(t) z dt + √β(t) dw,   t ∈ [0, 1],   β(t) = β_min + (β_max − β_min) t,

whose marginal is z_t = α_t z_0 + σ_t ε (see :func:`vp_sde_marginal`). The denoiser predicts the
clean latent ẑ₀ (data prediction); the score it implies is ∇ log p(z_t) ≈ −(z_t − α_t ẑ₀) / σ_t².
Generation starts from N(0, τ⁻¹ I) at t = 1 and integrates the probability-flow ODE

    dz/dt = −½ β(t) [z + ∇ log p(z_t)]

backwards to t ≈ 0 with Euler steps (the paper: τ = 1.2², 150 steps), or the reverse SDE with
Euler–Maruyama. Voice conversion runs the same ODE forwards, from a latent to an informative z₁.
"""

from dataclasses import dataclass

import torch
from diffusers import ConfigMixin, SchedulerMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

SOLVERS = ("ode", "sde")


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
    """Euler solver of the NaturalSpeech 2 VP SDE for a model that predicts the clean latent ẑ₀.

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

    Forward loop for voice conversion (latent → informative noise z₁), after `set_timesteps(N)`::

        latents = source_latents          # taken as z at t_min
        for t in scheduler.forward_timesteps:
            z0_hat = model(latents, t)
            latents = scheduler.forward_step(z0_hat, t, latents).prev_sample
        # latents is now z₁; run the sampling loop from it without `init_noise_sigma`.

    `forward_timesteps` is `timesteps` reversed without its first entry (N − 1 times from t_min
    up): each forward step mirrors one reverse Euler step, the last one lands on t = 1.

    There is no `num_train_timesteps`: training samples t uniformly in [0, 1] and
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
    """

    order = 1

    @register_to_config
    def __init__(
        self,
        beta_min: float = 0.05,
        beta_max: float = 20.0,
        solver: str = "ode",
        temperature: float = 1.44,
        t_min: float = 1e-4,
    ):
        if not 0.0 <= beta_min <= beta_max or beta_max <= 0.0:
            raise ValueError(f"need 0 <= beta_min <= beta_max and beta_max > 0, got {beta_min=}, {beta_max=}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if temperature <= 0.0:
            raise ValueError(f"temperature (τ, the inverse initial noise variance) must be > 0, got {temperature}")
        if not 0.0 < t_min < 1.0:
            raise ValueError(f"t_min must lie in (0, 1), got {t_min}")
        # standard deviation of the initial noise N(0, τ⁻¹ I)
        self.init_noise_sigma = temperature**-0.5
        self.num_inference_steps: int | None = None
        self.timesteps: torch.Tensor | None = None
        self._times: list | None = None

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
        generator: torch.Generator | None = None,
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
            generator: random source of the SDE noise (unused by the ODE solver).
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
                noise = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
                drift = -0.5 * beta * sample - beta * score
                prev_sample = sample + dt * drift + (beta * -dt) ** 0.5 * noise
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
        timesteps = torch.as_tensor(timesteps, device=original_samples.device, dtype=torch.float32)
        if timesteps.ndim == 1 and timesteps.shape[0] == original_samples.shape[0]:
            timesteps = timesteps.reshape(-1, *([1] * (original_samples.ndim - 1)))
        elif timesteps.ndim != 0:
            raise ValueError(
                f"timesteps must be a scalar or have shape (batch,) = ({original_samples.shape[0]},), "
                f"got {tuple(timesteps.shape)}"
            )
        if ((timesteps < 0) | (timesteps > 1)).any():
            raise ValueError("timesteps must lie in [0, 1]")
        alpha_t, sigma_t = vp_sde_marginal(timesteps, self.config.beta_min, self.config.beta_max)
        dtype = original_samples.dtype
        return alpha_t.to(dtype) * original_samples + sigma_t.to(dtype) * noise

    def _score(self, model_output: torch.Tensor, t: float, sample: torch.Tensor) -> torch.Tensor:
        """∇ log p(z_t) implied by the data prediction: −(z_t − α_t ẑ₀) / σ_t²."""
        alpha_t, sigma_t = vp_sde_marginal(
            torch.tensor(t, dtype=torch.float64), self.config.beta_min, self.config.beta_max
        )
        return -(sample - float(alpha_t) * model_output) / float(sigma_t) ** 2

    def _index_for_timestep(self, timestep: float | torch.Tensor) -> int:
        self._check_timesteps_set()
        if isinstance(timestep, torch.Tensor):
            if timestep.numel() != 1:
                raise ValueError(
                    f"timestep must be a single time from `scheduler.timesteps`, got shape {tuple(timestep.shape)}"
                )
            timestep = timestep.item()
        distances = [abs(t - float(timestep)) for t in self._times]
        index = min(range(len(distances)), key=distances.__getitem__)
        if distances[index] > 1e-6:
            raise ValueError(f"timestep {timestep} is not in the schedule set by `set_timesteps`")
        return index

    def _check_timesteps_set(self) -> None:
        if self.timesteps is None:
            raise ValueError("call `set_timesteps(num_inference_steps)` before stepping")

    @staticmethod
    def _check_shapes(model_output: torch.Tensor, sample: torch.Tensor) -> None:
        if model_output.shape != sample.shape:
            raise ValueError(
                f"model_output (ẑ₀) {tuple(model_output.shape)} and sample {tuple(sample.shape)} differ in shape"
            )
