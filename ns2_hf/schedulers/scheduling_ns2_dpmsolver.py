"""A few-step solver of the NaturalSpeech 2 probability-flow ODE: multistep DPM-Solver++ for data prediction.

NaturalSpeech 2's denoiser predicts the clean latent ẑ₀, which is exactly what DPM-Solver++ (Lu et al. 2022,
arXiv 2211.01095) integrates: in λ_t = log(α_t / σ_t) the probability-flow ODE of the VP SDE has the exact
solution

    z_t = (σ_t / σ_s) z_s + σ_t ∫_{λ_s}^{λ_t} e^{λ} ẑ₀(z_λ, λ) dλ,

whose linear part is solved exactly and whose integral is approximated with the ẑ₀ of the current and the
previous step (second order, "2M": one model call per step). The Euler solver of
:class:`~ns2_hf.schedulers.NS2Scheduler` needs about 50 calls for what this does in 10 (see
`benchmarks/bench_solvers.py`).

diffusers' `DPMSolverMultistepScheduler` implements the same update over a discrete training schedule
(`num_train_timesteps` β values and integer timesteps); NS2 is trained in continuous time t ∈ [0, 1] and
called with t itself, so this file carries the update for the continuous VP SDE. The SDE (β, α_t, σ_t, τ → σ)
comes from :mod:`~ns2_hf.schedulers.scheduling_ns2`, its one owner.
"""

import math

import torch
from diffusers import ConfigMixin, SchedulerMixin
from diffusers.configuration_utils import register_to_config

from .scheduling_ns2 import (
    DEFAULT_BETA_MAX,
    DEFAULT_BETA_MIN,
    DEFAULT_TEMPERATURE,
    NS2SchedulerOutput,
    check_beta_schedule,
    temperature_to_sigma,
    timestep_index,
    vp_sde_marginal,
)

TIMESTEP_SPACINGS = ("quadratic", "logsnr")


class NS2DPMSolverMultistepScheduler(SchedulerMixin, ConfigMixin):
    """DPM-Solver++(2M) for the NaturalSpeech 2 VP SDE and its clean-latent (ẑ₀) predicting model.

    A drop-in for :class:`~ns2_hf.schedulers.NS2Scheduler` at sampling time; it takes the SDE (β) and τ of
    that scheduler's config (diffusers notes the Euler-only keys it ignores), so it is swapped in with::

        pipe.scheduler = NS2DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        speech = pipe(text, prompt_audio=prompt, num_inference_steps=10)

    `set_timesteps(N)` places N times from t = 1 down to `t_final` (evenly in √t by default); `step` at
    `timesteps[i]` moves z to `timesteps[i + 1]` with the second-order multistep update (first order at the
    first step, which has no previous ẑ₀), and at the last time returns ẑ₀ itself, as the Euler scheduler does.
    So N steps cost N model calls. Steps must be taken in order.

    Args:
        beta_min (`float`, defaults to 0.05): β(0) of the linear noise rate (as the model was trained with).
        beta_max (`float`, defaults to 20.0): β(1).
        temperature (`float`, defaults to 1.44): τ of the initial noise N(0, τ⁻¹ I).
        t_final (`float`, defaults to 1e-3): the last time the model is called at, whose ẑ₀ is returned. Larger
            than the Euler scheduler's `t_min` (1e-4): with few calls, the last one is better spent where
            denoising still changes the latent (σ ≈ 0.007 rather than 0.002; on the shipped model, 10 calls
            come 0.033 log-mel L1 from Euler-150 with 1e-3, 0.046 with 1e-4).
        solver_order (`int`, defaults to 2): 2 for DPM-Solver++(2M); 1 is DDIM (first order in λ).
        timestep_spacing (`str`, defaults to `"quadratic"`): times evenly spaced in √t (`"quadratic"`, denser
            near the data) or in λ = log(α/σ) (`"logsnr"`, DPM-Solver's choice for images); on the shipped
            model they tie at 10 calls and quadratic is nearer Euler-150 at 8 (`benchmarks/bench_solvers.py`).
    """

    order = 1

    @register_to_config
    def __init__(
        self,
        beta_min: float = DEFAULT_BETA_MIN,
        beta_max: float = DEFAULT_BETA_MAX,
        temperature: float = DEFAULT_TEMPERATURE,
        t_final: float = 1e-3,
        solver_order: int = 2,
        timestep_spacing: str = "quadratic",
    ):
        check_beta_schedule(beta_min, beta_max)
        if not 0.0 < t_final < 1.0:
            raise ValueError(f"t_final must lie in (0, 1), got {t_final}")
        if solver_order not in (1, 2):
            raise ValueError(f"solver_order must be 1 or 2, got {solver_order!r}")
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {TIMESTEP_SPACINGS}, got {timestep_spacing!r}")
        self.init_noise_sigma = temperature_to_sigma(temperature)
        self.num_inference_steps: int | None = None
        self.timesteps: torch.Tensor | None = None
        self._times: list | None = None
        self._previous: tuple[int, torch.Tensor] | None = None  # (step index, ẑ₀) of the last step taken

    def _marginal(self, t: float) -> tuple[float, float, float]:
        """(α_t, σ_t, λ_t) in float64 Python floats."""
        alpha, sigma = vp_sde_marginal(torch.tensor(t, dtype=torch.float64), self.config.beta_min, self.config.beta_max)
        alpha, sigma = float(alpha), float(sigma)
        return alpha, sigma, math.log(alpha) - math.log(sigma)

    def _time_for_lambda(self, lambdas: torch.Tensor) -> torch.Tensor:
        """Inverse of λ(t) for the linear-β VP SDE: log α = −½ log(1 + e^{−2λ}) and
        (Δβ / 4) t² + (β_min / 2) t + log α = 0, solved in the cancellation-free form."""
        log_alpha = -0.5 * torch.nn.functional.softplus(-2.0 * lambdas)
        quadratic, linear = (self.config.beta_max - self.config.beta_min) / 4.0, self.config.beta_min / 2.0
        return -2.0 * log_alpha / (linear + torch.sqrt(linear**2 - 4.0 * quadratic * log_alpha))

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """Place the sampling times: `timesteps` `(num_inference_steps,)` float32, from 1 down to `t_final`.

        Args:
            num_inference_steps: model calls per sample, at least 2.
            device: where to put `timesteps`.
        """
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps < 2:
            raise ValueError(f"num_inference_steps must be an integer >= 2, got {num_inference_steps!r}")
        t_final, spacing = self.config.t_final, self.config.timestep_spacing
        if spacing == "logsnr":
            lambdas = torch.linspace(self._marginal(1.0)[2], self._marginal(t_final)[2], num_inference_steps, dtype=torch.float64)
            times = self._time_for_lambda(lambdas)
            times[0], times[-1] = 1.0, t_final  # exact ends
        else:
            times = torch.linspace(1.0, math.sqrt(t_final), num_inference_steps, dtype=torch.float64) ** 2
        self.num_inference_steps = num_inference_steps
        self._times = times.tolist()
        self.timesteps = times.to(device=device, dtype=torch.float32)
        self._previous = None

    def scale_model_input(self, sample: torch.Tensor, timestep: float | torch.Tensor | None = None) -> torch.Tensor:
        """Return `sample` unchanged (the NS2 denoiser takes z_t as it is)."""
        return sample

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> NS2SchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """One DPM-Solver++ step from `timestep` (t_i) to the next time t_{i+1}.

        With h = λ_{i+1} − λ_i, the first-order update is z ← (σ_{i+1}/σ_i) z − α_{i+1} (e^{−h} − 1) ẑ₀(t_i);
        the second-order one replaces ẑ₀(t_i) by ẑ₀(t_i) + (ẑ₀(t_i) − ẑ₀(t_{i−1})) / (2 r), r = h_{i−1} / h.
        At the last time the step returns ẑ₀.

        Args:
            model_output: ẑ₀ predicted at (`sample`, `timestep`), the shape of `sample`.
            timestep: the current time, an entry of `timesteps`.
            sample: z_t, e.g. `(batch, latent_dim, frames)`.
            generator: unused (the solver is deterministic); accepted for the diffusers step signature.
            return_dict: return an `NS2SchedulerOutput` instead of a tuple.
        """
        index = timestep_index(self._times, timestep)
        if model_output.shape != sample.shape:
            raise ValueError(
                f"model_output (ẑ₀) {tuple(model_output.shape)} and sample {tuple(sample.shape)} differ in shape"
            )
        if index == len(self._times) - 1:
            prev_sample = model_output
        else:
            _, sigma, lam = self._marginal(self._times[index])
            alpha_next, sigma_next, lam_next = self._marginal(self._times[index + 1])
            h = lam_next - lam
            data_estimate = model_output
            if self.config.solver_order == 2 and self._previous is not None and self._previous[0] == index - 1:
                lam_previous = self._marginal(self._times[index - 1])[2]
                ratio = (lam - lam_previous) / h
                data_estimate = model_output + (model_output - self._previous[1]) / (2.0 * ratio)
            prev_sample = (sigma_next / sigma) * sample - alpha_next * math.expm1(-h) * data_estimate
        self._previous = (index, model_output)
        if not return_dict:
            return prev_sample, model_output
        return NS2SchedulerOutput(prev_sample=prev_sample, pred_original_sample=model_output)
