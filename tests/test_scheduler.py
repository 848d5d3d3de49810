"""NS2Scheduler against known answers: the VP SDE marginal and exact (oracle) denoisers.

For data with a known distribution the optimal data-prediction model E[z₀ | z_t] has a closed
form, so the sampler can be tested without training anything: it must turn noise into samples
of that distribution.
"""

import math

import pytest
import torch

from ns2_hf.schedulers import (
    NS2DPMSolverMultistepScheduler,
    NS2Scheduler,
    NS2SchedulerOutput,
    temperature_to_sigma,
    vp_sde_beta,
    vp_sde_marginal,
)

BETA_MIN, BETA_MAX = 0.05, 20.0
MU, STD = 2.0, 0.5  # the Gaussian data distribution
MODES, MODE_STD, WEIGHTS = (-2.0, 2.0), 0.3, (0.3, 0.7)  # the two-component mixture


def gaussian_oracle(mu=MU, std=STD):
    """E[z₀ | z_t] for z₀ ~ N(mu, std²): mu + α std² / (α² std² + σ²) (z_t − α mu)."""

    def denoise(z_t, t):
        alpha, sigma = vp_sde_marginal(float(t), BETA_MIN, BETA_MAX)
        return mu + alpha * std**2 / (alpha**2 * std**2 + sigma**2) * (z_t - alpha * mu)

    return denoise


def mixture_oracle(modes=MODES, std=MODE_STD, weights=WEIGHTS):
    """E[z₀ | z_t] for a Gaussian mixture: per-component posterior means weighted by responsibilities."""
    modes, weights = torch.tensor(modes), torch.tensor(weights)

    def denoise(z_t, t):
        alpha, sigma = vp_sde_marginal(float(t), BETA_MIN, BETA_MAX)
        variance = alpha**2 * std**2 + sigma**2
        z = z_t.unsqueeze(-1)
        responsibilities = torch.softmax(torch.log(weights) - (z - alpha * modes) ** 2 / (2 * variance), dim=-1)
        means = modes + alpha * std**2 / variance * (z - alpha * modes)
        return (responsibilities * means).sum(-1).to(z_t.dtype)

    return denoise


def sample(scheduler, denoise, latents, generator=None):
    for t in scheduler.timesteps:
        latents = scheduler.step(denoise(latents, t), t, latents, generator=generator).prev_sample
    return latents


def forward(scheduler, denoise, latents):
    for t in scheduler.forward_timesteps:
        latents = scheduler.forward_step(denoise(latents, t), t, latents).prev_sample
    return latents


def make_scheduler(num_inference_steps=150, **config):
    scheduler = NS2Scheduler(beta_min=BETA_MIN, beta_max=BETA_MAX, **config)
    scheduler.set_timesteps(num_inference_steps)
    return scheduler


def test_marginal_known_values():
    t = torch.linspace(0, 1, 101)
    alpha, sigma = vp_sde_marginal(t, BETA_MIN, BETA_MAX)
    assert alpha[0] == 1 and sigma[0] == 0
    assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(t), atol=1e-6)
    assert torch.all(alpha[1:] < alpha[:-1])  # monotone: noise only grows
    assert alpha[-1] == pytest.approx(math.exp(-0.5 * (BETA_MIN + 0.5 * (BETA_MAX - BETA_MIN))), rel=1e-6)
    assert alpha[-1] < 0.01
    # σ near t = 0 is accurate: σ² ≈ ∫β ≈ β_min t
    assert vp_sde_marginal(1e-6, BETA_MIN, BETA_MAX)[1].item() ** 2 == pytest.approx(BETA_MIN * 1e-6, rel=1e-3)
    # d(log α)/dt = −½ β(t)
    t_mid = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    torch.log(vp_sde_marginal(t_mid, BETA_MIN, BETA_MAX)[0]).backward()
    beta = vp_sde_beta(torch.tensor(0.3, dtype=torch.float64), BETA_MIN, BETA_MAX)
    assert t_mid.grad.item() == pytest.approx(-0.5 * beta.item(), rel=1e-9)


def test_add_noise_matches_marginal():
    scheduler = make_scheduler()
    z0, noise = torch.randn(3, 4, 7), torch.randn(3, 4, 7)
    t = torch.tensor([0.0, 0.5, 1.0])
    noisy = scheduler.add_noise(z0, noise, t)
    alpha, sigma = vp_sde_marginal(t, BETA_MIN, BETA_MAX)
    assert torch.allclose(noisy, alpha[:, None, None] * z0 + sigma[:, None, None] * noise)
    assert torch.equal(noisy[0], z0[0])
    # the marginal statistics: z₀ ~ N(MU, STD²) → z_t ~ N(α MU, α² STD² + σ²)
    z0 = MU + STD * torch.randn(50_000)
    noisy = scheduler.add_noise(z0, torch.randn(50_000), 0.2)
    alpha, sigma = (float(value) for value in vp_sde_marginal(0.2, BETA_MIN, BETA_MAX))
    assert noisy.mean().item() == pytest.approx(alpha * MU, abs=0.02)
    assert noisy.var().item() == pytest.approx(alpha**2 * STD**2 + sigma**2, rel=0.03)


def test_set_timesteps():
    scheduler = make_scheduler(150, t_min=1e-3)
    assert scheduler.timesteps.shape == (150,) and scheduler.timesteps.dtype == torch.float32
    assert scheduler.timesteps[0] == 1.0 and scheduler.timesteps[-1].item() == pytest.approx(1e-3)
    assert torch.all(scheduler.timesteps[1:] < scheduler.timesteps[:-1])
    assert torch.equal(scheduler.forward_timesteps, scheduler.timesteps.flip(0)[:-1])
    assert scheduler.init_noise_sigma == pytest.approx(1 / 1.2)
    sample = torch.randn(2, 3, 4)
    assert scheduler.scale_model_input(sample, scheduler.timesteps[0]) is sample


def test_ode_oracle_matches_exact_flow():
    """For Gaussian data the probability-flow ODE is linear: z₀ = μ + s / √(α₁² s² + σ₁²) (z₁ − α₁ μ)."""
    scheduler = make_scheduler(150, temperature=1.0)
    z1 = torch.linspace(-3, 3, 101)
    alpha, sigma = vp_sde_marginal(1.0, BETA_MIN, BETA_MAX)
    exact = MU + STD / torch.sqrt(alpha**2 * STD**2 + sigma**2) * (z1 - alpha * MU)
    assert (sample(scheduler, gaussian_oracle(), z1) - exact).abs().max() < 0.015  # measured 0.0095


@pytest.mark.parametrize("solver", ["ode", "sde"])
def test_oracle_recovers_gaussian(solver):
    scheduler = make_scheduler(150, solver=solver, temperature=1.0)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(20_000, generator=generator) * scheduler.init_noise_sigma
    samples = sample(scheduler, gaussian_oracle(), noise, generator)
    # measured: ode 1.992 / 0.501, sde 2.005 / 0.502 (standard error of the mean 0.0035)
    assert samples.mean().item() == pytest.approx(MU, abs=0.03)
    assert samples.std().item() == pytest.approx(STD, rel=0.03)


@pytest.mark.parametrize("solver", ["ode", "sde"])
def test_oracle_recovers_mixture_weights(solver):
    scheduler = make_scheduler(150, solver=solver, temperature=1.0)
    generator = torch.Generator().manual_seed(0)
    samples = sample(scheduler, mixture_oracle(), torch.randn(20_000, generator=generator), generator)
    right = samples > 0
    assert right.float().mean().item() == pytest.approx(WEIGHTS[1], abs=0.02)  # measured 0.697 / 0.705
    assert samples[right].mean().item() == pytest.approx(MODES[1], abs=0.03)
    assert samples[~right].mean().item() == pytest.approx(MODES[0], abs=0.05)
    assert samples[right].std().item() == pytest.approx(MODE_STD, rel=0.07)


def test_temperature_shrinks_spread():
    """Starting from N(0, τ⁻¹) the Gaussian flow scales the spread by τ^(−½): the paper's τ = 1.2²."""
    spreads = {}
    for temperature in (1.0, 1.44):
        scheduler = make_scheduler(150, temperature=temperature)
        noise = torch.randn(20_000, generator=torch.Generator().manual_seed(0)) * scheduler.init_noise_sigma
        spreads[temperature] = sample(scheduler, gaussian_oracle(), noise).std().item()
    assert spreads[1.44] == pytest.approx(STD / 1.2, rel=0.03)  # measured 0.4157 vs 0.4167
    assert spreads[1.44] / spreads[1.0] == pytest.approx(1 / 1.2, rel=1e-3)


def test_forward_then_reverse_ode_round_trip():
    scheduler = make_scheduler(150, temperature=1.0)
    z0 = MU + STD * torch.randn(5_000)
    z1 = forward(scheduler, gaussian_oracle(), z0)
    # the forward ODE carries the data to the prior N(0, 1), keeping each sample's rank
    assert z1.mean().item() == pytest.approx(0.0, abs=0.05) and z1.std().item() == pytest.approx(1.0, rel=0.03)
    assert torch.all(z1[z0.argsort()].diff() > -1e-4)  # up to float32 rounding
    assert (sample(scheduler, gaussian_oracle(), z1) - z0).abs().max() < 0.04  # measured 0.022

    z0 = torch.where(torch.rand(5_000) < WEIGHTS[0], MODES[0], MODES[1]) + MODE_STD * torch.randn(5_000)
    error = (sample(scheduler, mixture_oracle(), forward(scheduler, mixture_oracle(), z0)) - z0).abs()
    # points between the modes sit where the flow separates: a few may cross; the rest come back
    assert error.median() < 0.02 and (error > 0.1).float().mean() < 0.01


def test_batched_latents_and_dtypes():
    """(batch, latent_dim, frames) latents: each element follows the oracle; float32/float64 are kept."""
    for dtype in (torch.float32, torch.float64):
        scheduler = make_scheduler(50, temperature=1.0)
        noise = torch.randn(8, 16, 100, generator=torch.Generator().manual_seed(1), dtype=dtype)
        samples = sample(scheduler, gaussian_oracle(), noise)
        assert samples.shape == (8, 16, 100) and samples.dtype == dtype
        assert samples.mean().item() == pytest.approx(MU, abs=0.05)
        assert samples.std().item() == pytest.approx(STD, rel=0.05)
        step = scheduler.step(noise, scheduler.timesteps[0], noise, return_dict=False)
        assert isinstance(step, tuple) and step[0].dtype == dtype and step[1] is noise


def test_last_step_returns_clean_estimate():
    scheduler = make_scheduler(10)
    z0_hat, z = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    output = scheduler.step(z0_hat, scheduler.timesteps[-1], z)
    assert isinstance(output, NS2SchedulerOutput)
    assert torch.equal(output.prev_sample, z0_hat) and torch.equal(output.pred_original_sample, z0_hat)


def test_sde_generator_reproducible():
    scheduler = make_scheduler(20, solver="sde")
    noise = torch.randn(2, 4, 10)
    runs = [sample(scheduler, gaussian_oracle(), noise, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    other = sample(scheduler, gaussian_oracle(), noise, torch.Generator().manual_seed(8))
    assert not torch.allclose(runs[0], other)


def test_save_and_load_config(tmp_path):
    scheduler = NS2Scheduler(beta_min=0.1, beta_max=15.0, solver="sde", temperature=2.0, t_min=1e-3, t_eps=1e-3)
    scheduler.save_pretrained(tmp_path)
    loaded = NS2Scheduler.from_pretrained(tmp_path)
    assert dict(loaded.config) == dict(scheduler.config)
    assert loaded.init_noise_sigma == pytest.approx(2.0**-0.5)
    assert NS2Scheduler.from_config(scheduler.config).config.solver == "sde"


def test_bad_input_raises():
    with pytest.raises(ValueError, match="solver"):
        NS2Scheduler(solver="heun")
    with pytest.raises(ValueError, match="temperature"):
        NS2Scheduler(temperature=0.0)
    with pytest.raises(ValueError, match="beta_min"):
        NS2Scheduler(beta_min=30.0)
    with pytest.raises(ValueError, match="t_min"):
        NS2Scheduler(t_min=0.0)
    scheduler = NS2Scheduler()
    z = torch.randn(1, 2, 3)
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler.step(z, 1.0, z)
    with pytest.raises(ValueError, match="num_inference_steps"):
        scheduler.set_timesteps(1)
    scheduler.set_timesteps(10)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(z, 0.123, z)
    with pytest.raises(ValueError, match="single time"):
        scheduler.step(z, scheduler.timesteps[:2], z)
    with pytest.raises(ValueError, match="differ in shape"):
        scheduler.step(z[:, :1], scheduler.timesteps[0], z)
    with pytest.raises(ValueError, match="ends there"):
        scheduler.forward_step(z, scheduler.timesteps[0], z)
    with pytest.raises(ValueError, match=r"\(batch,\)"):
        scheduler.add_noise(z, z, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scheduler.add_noise(z, z, 1.5)


# --- the scheduler as the owner of the SDE's training side ---------------------------------------------------


def test_training_functions_noise_and_recover_the_noise():
    scheduler = NS2Scheduler(beta_min=BETA_MIN, beta_max=BETA_MAX, t_eps=1e-3)
    times = scheduler.sample_timesteps(10_000, generator=torch.Generator().manual_seed(0))
    assert times.min() >= 1e-3 and times.max() <= 1.0 and times.mean().item() == pytest.approx(0.5, abs=0.01)
    again = scheduler.sample_timesteps(10_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(times, again)
    clean, noise = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    t = torch.tensor([0.01, 0.2, 0.6, 1.0])
    noisy = scheduler.add_noise(clean, noise, t)
    # a perfect ẑ₀ implies exactly the noise that was added
    torch.testing.assert_close(scheduler.noise_from_data_prediction(clean, noisy, t), noise, atol=1e-4, rtol=1e-4)
    alpha, sigma = vp_sde_marginal(t, BETA_MIN, BETA_MAX)
    torch.testing.assert_close(scheduler.snr(t), (alpha / sigma) ** 2)
    # the score step and the training side agree: score = −ε̂ / σ
    scheduler.set_timesteps(10)
    t0 = float(scheduler.timesteps[3])
    _, sigma0 = vp_sde_marginal(t0, BETA_MIN, BETA_MAX)
    expected = -scheduler.noise_from_data_prediction(clean, noisy, t0) / sigma0
    torch.testing.assert_close(scheduler._score(clean, t0, noisy), expected)


def test_sde_step_takes_given_noise_and_a_generator_per_item():
    scheduler = make_scheduler(20, solver="sde")
    assert scheduler.stochastic and not make_scheduler(20).stochastic
    z, z0_hat = torch.randn(2, 4, 10), torch.randn(2, 4, 10)
    t = scheduler.timesteps[3]
    noise = torch.randn(2, 4, 10)
    given = scheduler.step(z0_hat, t, z, variance_noise=noise).prev_sample
    torch.testing.assert_close(given, scheduler.step(z0_hat, t, z, variance_noise=noise).prev_sample)
    per_item = scheduler.step(z0_hat, t, z, generator=[torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    alone = scheduler.step(z0_hat[1:], t, z[1:], generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(per_item.prev_sample[1:], alone.prev_sample)
    with pytest.raises(ValueError, match="variance_noise"):
        scheduler.step(z0_hat, t, z, variance_noise=noise[:1])


@pytest.mark.parametrize("temperature", [0.0, -1.44, float("nan"), float("inf")])
def test_temperature_must_be_finite_and_positive(temperature):
    with pytest.raises(ValueError, match="temperature"):
        temperature_to_sigma(temperature)
    with pytest.raises(ValueError, match="temperature"):
        NS2DPMSolverMultistepScheduler(temperature=temperature)
    assert temperature_to_sigma(1.44) == pytest.approx(1 / 1.2)


# --- the few-step solver: DPM-Solver++(2M) ------------------------------------------------------------------


def exact_gaussian_flow_estimate(z1, t_final):
    """ẑ₀ at t_final on the exact probability-flow path from z1 (Gaussian data N(MU, STD²))."""
    alpha_1, sigma_1 = vp_sde_marginal(1.0, BETA_MIN, BETA_MAX)
    alpha, sigma = vp_sde_marginal(torch.tensor(t_final, dtype=torch.float64), BETA_MIN, BETA_MAX)
    variance_1, variance = alpha_1**2 * STD**2 + sigma_1**2, alpha**2 * STD**2 + sigma**2
    z = alpha * MU + torch.sqrt(variance / variance_1) * (z1 - alpha_1 * MU)
    return MU + alpha * STD**2 / variance * (z - alpha * MU)


@pytest.mark.parametrize("spacing", ["quadratic", "logsnr"])
def test_dpm_solver_converges_at_second_order_to_the_exact_gaussian_flow(spacing):
    """Doubling the steps divides the error by ~4 (measured 4.7–5.4 quadratic, 3.9–4.0 logsnr from 20 steps on);
    the first-order variant (DDIM) only by 2. A wrong coefficient anywhere breaks the order."""
    z1 = torch.linspace(-3, 3, 101, dtype=torch.float64)
    errors = {}
    for order in (1, 2):
        scheduler = NS2DPMSolverMultistepScheduler(beta_min=BETA_MIN, beta_max=BETA_MAX, solver_order=order,
                                                   timestep_spacing=spacing)
        exact = exact_gaussian_flow_estimate(z1, scheduler.config.t_final)
        errors[order] = []
        for steps in (20, 40, 80):
            scheduler.set_timesteps(steps)
            errors[order].append((sample(scheduler, gaussian_oracle(), z1) - exact).abs().max().item())
    second = [errors[2][i] / errors[2][i + 1] for i in range(2)]
    first = [errors[1][i] / errors[1][i + 1] for i in range(2)]
    assert all(ratio > 3.5 for ratio in second), second
    assert all(1.8 < ratio < 2.2 for ratio in first), first
    assert errors[2][1] < 0.01  # 40 calls: as close as Euler's 150 (0.0095)


def test_dpm_solver_with_ten_calls_recovers_a_mixture():
    """Ten model calls land the mixture's mass, modes and spread; Euler needs about 25 for the same pathwise error
    (measured mean |Δ| to a 1000-step Euler solution: dpm-10 0.049, euler-10 0.100, euler-25 0.033)."""
    noise = torch.randn(20_000, generator=torch.Generator().manual_seed(0))
    reference = sample(make_scheduler(1000), mixture_oracle(), noise)
    scheduler = NS2DPMSolverMultistepScheduler(beta_min=BETA_MIN, beta_max=BETA_MAX)
    scheduler.set_timesteps(10)
    samples = sample(scheduler, mixture_oracle(), noise)
    right = samples > 0
    assert right.float().mean().item() == pytest.approx(WEIGHTS[1], abs=0.02)  # measured 0.701
    assert samples[right].mean().item() == pytest.approx(MODES[1], abs=0.03)  # 2.005
    assert samples[~right].mean().item() == pytest.approx(MODES[0], abs=0.06)  # -2.036
    assert samples[right].std().item() == pytest.approx(MODE_STD, rel=0.15)  # 0.340
    euler_error = (sample(make_scheduler(10), mixture_oracle(), noise) - reference).abs().mean()
    assert (samples - reference).abs().mean() < 0.6 * euler_error


def test_dpm_solver_swaps_in_from_the_euler_config_and_saves(tmp_path):
    euler = NS2Scheduler(beta_min=0.1, beta_max=15.0, temperature=25.0)
    scheduler = NS2DPMSolverMultistepScheduler.from_config(euler.config)
    assert (scheduler.config.beta_min, scheduler.config.beta_max) == (0.1, 15.0)
    assert scheduler.init_noise_sigma == pytest.approx(euler.init_noise_sigma)
    scheduler.save_pretrained(tmp_path)
    loaded = NS2DPMSolverMultistepScheduler.from_pretrained(tmp_path)
    assert {key: loaded.config[key] for key in scheduler.config if not key.startswith("_")} == {
        key: value for key, value in scheduler.config.items() if not key.startswith("_")
    }
    scheduler.set_timesteps(8)
    assert scheduler.timesteps[0] == 1.0 and scheduler.timesteps[-1] == pytest.approx(scheduler.config.t_final)
    assert torch.all(scheduler.timesteps[1:] < scheduler.timesteps[:-1])
    z0_hat, z = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    assert torch.equal(scheduler.step(z0_hat, scheduler.timesteps[-1], z).prev_sample, z0_hat)


def test_dpm_solver_bad_input_raises():
    with pytest.raises(ValueError, match="solver_order"):
        NS2DPMSolverMultistepScheduler(solver_order=3)
    with pytest.raises(ValueError, match="timestep_spacing"):
        NS2DPMSolverMultistepScheduler(timestep_spacing="karras")
    with pytest.raises(ValueError, match="t_final"):
        NS2DPMSolverMultistepScheduler(t_final=0.0)
    scheduler = NS2DPMSolverMultistepScheduler()
    z = torch.randn(1, 2, 3)
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler.step(z, 1.0, z)
    with pytest.raises(ValueError, match="num_inference_steps"):
        scheduler.set_timesteps(1)
    scheduler.set_timesteps(5)
    with pytest.raises(ValueError, match="not in the schedule"):
        scheduler.step(z, 0.123, z)
    with pytest.raises(ValueError, match="differ in shape"):
        scheduler.step(z[:, :1], scheduler.timesteps[0], z)
