from .scheduling_ns2 import NS2Scheduler, NS2SchedulerOutput, temperature_to_sigma, vp_sde_beta, vp_sde_marginal
from .scheduling_ns2_dpmsolver import NS2DPMSolverMultistepScheduler

__all__ = [
    "NS2DPMSolverMultistepScheduler",
    "NS2Scheduler",
    "NS2SchedulerOutput",
    "temperature_to_sigma",
    "vp_sde_beta",
    "vp_sde_marginal",
]
