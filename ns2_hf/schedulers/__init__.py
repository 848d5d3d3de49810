from .scheduling_ns2 import NS2Scheduler, NS2SchedulerOutput, vp_sde_beta, vp_sde_marginal

__all__ = ["NS2Scheduler", "NS2SchedulerOutput", "vp_sde_beta", "vp_sde_marginal"]
