"""How many CPU threads torch uses for synthesis: one setting for `ns2-tts`, the demo and `evaluate_tts.py`.

The number comes from, in order: the `--threads` argument, the `NS2_NUM_THREADS` environment variable,
else `DEFAULT_NUM_THREADS` (1). Why 1 (measured, `benchmarks/bench_threads.py`): torch's OpenMP worker
threads spin while they wait for each other, so on a machine whose cores are also busy with other work
(a training job, a shared CI runner, the demo's neighbours) two threads ran the shipped model one sentence
in 5.6 minutes instead of 12 s (issue 19), and 16× to over 400× slower than on a quieter machine in
`benchmarks/bench_threads.py` — each step waits for a thread the OS has not scheduled. One thread cannot
wait for another; on an idle machine it loses only the (small) parallel speed-up of this CPU-sized model.
Give `--threads N` / `NS2_NUM_THREADS=N` on a machine whose N cores are yours alone.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Union

#: Environment variable read when no `--threads` is given.
THREADS_ENV_VAR = "NS2_NUM_THREADS"
#: Threads used when neither `--threads` nor `NS2_NUM_THREADS` is given (see the module docstring).
DEFAULT_NUM_THREADS = 1
#: Largest accepted setting (a typo such as 1000 would otherwise oversubscribe any machine).
MAX_NUM_THREADS = 256


class ThreadSettingError(ValueError):
    """Raised for a thread count that is not a whole number from 1 to `MAX_NUM_THREADS`."""


def resolve_num_threads(threads: Optional[Union[int, str]] = None) -> int:
    """The thread count to use: `threads` if given, else `$NS2_NUM_THREADS`, else `DEFAULT_NUM_THREADS`.

    Raises:
        ThreadSettingError: the chosen value is not a whole number from 1 to `MAX_NUM_THREADS`; the
            message names where it came from.
    """
    if threads is not None:
        source, value = "--threads", threads
    elif os.environ.get(THREADS_ENV_VAR, "").strip():
        source, value = f"${THREADS_ENV_VAR}", os.environ[THREADS_ENV_VAR].strip()
    else:
        return DEFAULT_NUM_THREADS
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not 1 <= number <= MAX_NUM_THREADS:
        raise ThreadSettingError(f"{source} must be a whole number from 1 to {MAX_NUM_THREADS}, got {value!r}.")
    return number


def apply_num_threads(threads: Optional[Union[int, str]] = None) -> int:
    """Resolve the thread count (see `resolve_num_threads`) and give it to `torch.set_num_threads`.
    Returns the count. Call it once at start-up, before the first synthesis.

    If torch is not imported yet, `OMP_WAIT_POLICY` is also set to `PASSIVE` (unless already set): OpenMP
    reads it once, when torch loads it, and waiting threads then sleep instead of spinning — measured
    (`benchmarks/bench_threads.py`), two threads then held up under a moderate extra load, though not under a
    heavy one, where only one thread did. `ns2-tts` and
    `evaluate_tts.py` import torch after this call; a program that imported torch earlier keeps its policy.
    """
    number = resolve_num_threads(threads)
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(number)
    return number
