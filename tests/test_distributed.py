"""Several training processes: the RVQ codebooks learn from every process's batch and stay equal on all of them.

One start of two real CPU processes (`torch.multiprocessing.spawn`, the gloo backend, a file rendezvous) runs
every scenario; the tests compare what the processes hold with each other and with a one-process run on the
union of their batches (~25 s in all on a shared 2-core machine).
"""

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ns2_hf.codec import NS2CodecConfig, NS2CodecModel  # noqa: E402
from ns2_hf.codec.quantizer import NS2ResidualVectorQuantizer  # noqa: E402
from training.trainer_utils import (  # noqa: E402
    ProcessMismatchError,
    TrainingProgress,
    check_processes_agree,
    ddp_kwargs,
    mean_over_processes,
    save_checkpoint,
)

WORLD_SIZE = 2
STEPS = 3


def quantizer_of(**fields) -> NS2ResidualVectorQuantizer:
    torch.manual_seed(0)  # the same initial codebooks in every process
    return NS2ResidualVectorQuantizer(NS2CodecConfig.tiny(**fields)).train()


def live_quantizer() -> NS2ResidualVectorQuantizer:
    """No quantizer dropout, and every code in use (no restart within a few steps): EMA steps alone."""
    quantizer = quantizer_of(dead_code_threshold=1e-3, quantizer_dropout=0.0)
    quantizer.cluster_size.fill_(1.0)
    quantizer.embedding_sum.copy_(quantizer.embeddings)
    return quantizer


def rank_batch(step: int, rank: int, latent_dim: int = 32, offset: float = 0.0):
    """`(latents (2, latent_dim, 12), mask (2, 12))` of process `rank` at `step`; its second item is padded."""
    generator = torch.Generator().manual_seed(100 * step + rank)
    latents = torch.randn(2, latent_dim, 12, generator=generator) + offset
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 8 + rank:] = False
    return latents, mask


def buffers_of(module) -> dict:
    return {name: buffer.detach().clone().contiguous() for name, buffer in module.named_buffers()}


# ---- what each process runs ------------------------------------------------------------------------------
def ema_updates(rank: int) -> dict:
    """EMA steps without restarts or dropout: comparable with one process on the union batch."""
    quantizer = live_quantizer()
    for step in range(STEPS):
        output = quantizer(*rank_batch(step, rank))
    return {**buffers_of(quantizer), "codes": output.audio_codes}


def dead_code_restarts(rank: int) -> dict:
    """Every code starts dead; rank 0's frames sit near +10, rank 1's near -10; at the second step rank 1 has
    only padding (it must still take part)."""
    quantizer = quantizer_of(dead_code_threshold=0.5, quantizer_dropout=0.0)
    torch.manual_seed(10 + rank)  # each process draws its own candidates, as under accelerate's seeding
    latents, mask = rank_batch(0, rank, offset=10.0 if rank == 0 else -10.0)
    quantizer(latents, mask)
    after_first = quantizer.embeddings.clone()
    quantizer(latents, mask if rank == 0 else torch.zeros_like(mask))
    return {"after_first": after_first, **buffers_of(quantizer)}


def ddp_codec_steps(rank: int) -> dict:
    """A tiny codec under DistributedDataParallel, configured as the training scripts do, with quantizer dropout
    and dead-code restarts on and different random draws per process; records after every optimizer step the
    largest difference between the processes' parameters and buffers."""
    torch.manual_seed(0)
    codec = NS2CodecModel(NS2CodecConfig.tiny(quantizer_dropout=0.5))
    model = torch.nn.parallel.DistributedDataParallel(codec, **ddp_kwargs().to_kwargs())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(100 + rank)
    differences = []
    for step in range(STEPS):
        audio = 0.1 * torch.randn(2, 3200, generator=torch.Generator().manual_seed(10 * step + rank))
        output = model(audio, padding_mask=torch.ones_like(audio, dtype=torch.bool))
        loss = (output.audio_values - audio).abs().mean() + output.commitment_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state = torch.cat([tensor.detach().reshape(-1) for tensor in codec.state_dict().values()])
        gathered = [torch.empty_like(state) for _ in range(WORLD_SIZE)]
        dist.all_gather(gathered, state)
        differences.append((gathered[0] - gathered[1]).abs().max())
    return {"differences": torch.stack(differences), "codebook_moved": (codec.quantizer.embeddings != quantizer_of().embeddings).any().reshape(1)}


def training_bookkeeping(rank: int, folder: str) -> dict:
    """What the training scripts do around the steps, under accelerate with two CPU processes: the logged
    losses, the agreement check of the initial weights and their EMA, and the checkpoint."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.training_utils import EMAModel

    accelerator = Accelerator(cpu=True, kwargs_handlers=[ddp_kwargs()])
    logged = mean_over_processes(accelerator, {"loss": torch.tensor(1.0 + rank), "mel_loss": 2.0 * rank})
    torch.rand(rank + 1)  # the processes' random streams differ before the seed, as in a real run
    set_seed(0)
    model = torch.nn.Linear(4, 4)
    ema = EMAModel(model.parameters(), decay=0.9)
    check_processes_agree("the initial weights", [*model.state_dict().values(), *ema.shadow_params], accelerator.device)
    with torch.no_grad():
        model.weight[0, 0] += rank
    try:
        check_processes_agree("the initial weights", model.state_dict().values(), accelerator.device)
        mismatch_found = False
    except ProcessMismatchError:
        mismatch_found = True
    with torch.no_grad():
        model.weight[0, 0] -= rank
    model = accelerator.prepare(model)
    save_checkpoint(accelerator, Path(folder) / "run", 1, 1, ema, TrainingProgress())
    return {"logged": torch.tensor([logged["loss"], logged["mel_loss"]]), "mismatch_found": torch.tensor([mismatch_found])}


SCENARIOS = {"ema": ema_updates, "restart": dead_code_restarts, "ddp": ddp_codec_steps}


def worker(rank: int, folder: str, port: int) -> None:
    """Runs every scenario in process `rank` and saves what it returns to `folder/<scenario>_<rank>.safetensors`:
    the quantizer scenarios on a bare gloo process group, then the bookkeeping under accelerate (which starts
    its own group from the environment variables torchrun would set)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=WORLD_SIZE)
    try:
        for name, scenario in SCENARIOS.items():
            save_file(scenario(rank), f"{folder}/{name}_{rank}.safetensors")
    finally:
        dist.destroy_process_group()
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), ACCELERATE_USE_CPU="true")
    save_file(training_bookkeeping(rank, folder), f"{folder}/bookkeeping_{rank}.safetensors")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """`{scenario: [results of rank 0, results of rank 1]}` from one start of two processes."""
    folder = tmp_path_factory.mktemp("distributed")
    with socket.socket() as probe:  # a free port for accelerate's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(worker, args=(str(folder), port), nprocs=WORLD_SIZE, join=True)
    results = {name: [load_file(str(folder / f"{name}_{rank}.safetensors")) for rank in range(WORLD_SIZE)]
               for name in [*SCENARIOS, "bookkeeping"]}
    results["folder"] = folder
    return results


# ---- tests -----------------------------------------------------------------------------------------------
def test_codebook_updates_equal_one_process_on_the_union_batch(two_processes):
    ranks = two_processes["ema"]
    for name in ("embeddings", "cluster_size", "embedding_sum"):
        assert torch.equal(ranks[0][name], ranks[1][name]), f"{name} differs between the processes"

    union, alone = live_quantizer(), live_quantizer()
    for step in range(STEPS):
        batches = [rank_batch(step, rank) for rank in range(WORLD_SIZE)]
        output = union(torch.cat([latents for latents, _ in batches]), torch.cat([mask for _, mask in batches]))
        alone(*batches[0])
    for name, buffer in buffers_of(union).items():
        torch.testing.assert_close(ranks[0][name], buffer, rtol=1e-5, atol=1e-5)
    assert torch.equal(torch.cat([ranks[0]["codes"], ranks[1]["codes"]]), output.audio_codes)
    assert not torch.allclose(ranks[0]["embedding_sum"], alone.embedding_sum, atol=1e-3)  # rank 0's data alone differs


def test_dead_codes_restart_from_every_process_and_survive_a_padding_only_batch(two_processes):
    ranks = two_processes["restart"]
    for name in ("after_first", "embeddings", "cluster_size", "embedding_sum"):
        assert torch.equal(ranks[0][name], ranks[1][name]), f"{name} differs between the processes"
    signs = ranks[0]["after_first"][0].mean(dim=1).sign()  # first quantizer: one sign per code
    assert (signs[0::2] > 0).all() and (signs[1::2] < 0).all()  # even codes from rank 0's frames, odd from rank 1's
    assert torch.isfinite(ranks[0]["embeddings"]).all()


def test_ddp_codec_keeps_parameters_and_codebooks_equal_after_every_step(two_processes):
    ranks = two_processes["ddp"]
    assert torch.equal(ranks[0]["differences"], torch.zeros(STEPS))
    assert bool(ranks[0]["codebook_moved"])



def test_logged_losses_are_the_mean_over_processes(two_processes):
    for rank in range(WORLD_SIZE):
        assert two_processes["bookkeeping"][rank]["logged"].tolist() == [1.5, 1.0]


def test_one_seed_gives_equal_initial_weights_and_a_mismatch_is_caught(two_processes):
    # the first check (equal weights and EMA copies after one seed) raised nothing, or no file would exist
    assert all(bool(two_processes["bookkeeping"][rank]["mismatch_found"]) for rank in range(WORLD_SIZE))


def test_one_process_writes_one_checkpoint_with_every_process_random_state(two_processes):
    checkpoints = two_processes["folder"] / "run" / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["step_1"]
    written = sorted(path.name for path in (checkpoints / "step_1").iterdir())
    assert {"model.safetensors", "ema.safetensors", "training_state.json"} <= set(written)
    assert [name for name in written if name.startswith("random_states")] == ["random_states_0.pkl", "random_states_1.pkl"]
