"""Process-group setup for a single process, torchrun, the deepspeed launcher or srun.

Under ``srun`` each task is one rank: RANK, WORLD_SIZE and LOCAL_RANK come from
SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, and MASTER_ADDR/MASTER_PORT are
exported by ``slurm/train.sh`` (first host of the allocation). A plain single
process gets rank 0 of 1 on 127.0.0.1, so DeepSpeed does not fall back to MPI.
On a machine without CUDA, DeepSpeed's CPU accelerator is selected.

On CPU, DeepSpeed builds a C++ op (``deepspeed_shm_comm``) the first time the
process group starts, which takes 20–60 s. It is built into the project's
environment (``<sys.prefix>/torch_extensions``) unless ``TORCH_EXTENSIONS_DIR``
is set, so another environment on the machine does not overwrite it (torch's
default, ``~/.cache/torch_extensions``, is shared), and the build is announced
before it starts.
"""

from __future__ import annotations

import glob
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SHM_OP = "deepspeed_shm_comm"


def extensions_dir() -> Path:
    """Where torch builds C++ extensions: ``TORCH_EXTENSIONS_DIR`` when set, else (set now)
    ``<environment>/torch_extensions``; torch's shared default when the environment is read-only."""
    env = os.environ
    if "TORCH_EXTENSIONS_DIR" not in env and os.access(sys.prefix, os.W_OK):
        env["TORCH_EXTENSIONS_DIR"] = str(Path(sys.prefix) / "torch_extensions")
    if "TORCH_EXTENSIONS_DIR" in env:
        return Path(env["TORCH_EXTENSIONS_DIR"])
    from torch.utils.cpp_extension import get_default_build_root

    return Path(get_default_build_root())


def announce_build(name: str, folder: Path, say=print) -> bool:
    """Say that the C++ op ``name`` is about to be built, unless ``folder`` already holds it; True if said."""
    if glob.glob(str(folder / name / "*.so")) or glob.glob(str(folder / "*" / name / "*.so")):
        return False
    say(f"building DeepSpeed's C++ op (20-60 s, once): {folder / name}")  # short: a log line stays < 120
    return True


def setup_distributed(say=print) -> DistInfo:
    """Fill the rendezvous variables, select the accelerator and init the process group.

    ``say`` prints a line of news on local rank 0 (the build of DeepSpeed's CPU op).
    """
    env = os.environ
    if "RANK" not in env and "SLURM_PROCID" in env and "MASTER_ADDR" in env:
        env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], env["SLURM_NTASKS"]
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    if "RANK" not in env:
        env.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
        env.setdefault("MASTER_PORT", str(_free_port()))
    cuda = torch.cuda.is_available()
    if not cuda:
        env.setdefault("DS_ACCELERATOR", "cpu")
    folder = extensions_dir()  # on every rank, before DeepSpeed loads: they must all find the same build
    import deepspeed

    local_rank = int(env["LOCAL_RANK"])
    if cuda:
        torch.cuda.set_device(local_rank)
    elif local_rank == 0:
        announce_build(SHM_OP, folder, say)
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return DistInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), local_rank, device)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (a stop request seen by one rank stops them all)."""
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
