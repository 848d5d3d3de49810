from .scheduling_ns2 import NS2Scheduler, NS2SchedulerOutput, temperature_to_sigma, vp_sde_beta, vp_sde_marginal

__all__ = ["NS2Scheduler", "NS2SchedulerOutput", "temperature_to_sigma", "vp_sde_beta", "vp_sde_marginal"]
