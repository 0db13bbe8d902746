"""Device and precision selection: the policy every front end shares."""

from __future__ import annotations

import functools

import torch

from .config import PRECISIONS

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
# CPU flags of native bfloat16 arithmetic (x86): with them bf16 runs a U-Net ~3x faster
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def available_devices() -> list[str]:
    """"auto", "cpu" and the accelerators torch can see here."""
    choices = ["auto", "cpu"]
    if torch.cuda.is_available():
        choices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        choices.append("mps")
    return choices


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX; Linux flags)."""
    try:
        with open("/proc/cpuinfo") as stream:
            flags = next((line for line in stream if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in _CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision to run: "auto" is bf16 where the hardware runs it natively, else fp32.

    bf16 labels agree with fp32 labels at IoU 0.999 on the shipped model
    (docs/performance.md) and run about 3x faster on such CPUs and 2x on recent GPUs.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def precision_notice(precision: str, device: torch.device) -> str | None:
    """A warning when ``precision`` is slow or inexact on ``device``, else None."""
    if precision == "fp16" and device.type == "cpu":
        return "fp16 on the CPU is emulated: slower than fp32 and less exact; use bf16 or fp32"
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        return "this CPU has no native bf16: it runs slower than fp32; use fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16 support; use fp16 or fp32"
    return None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; other names are checked."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a device name (use auto, cpu, cuda or mps)") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available here")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was asked for but Apple MPS is not available here")
    return resolved


def autocast(device: torch.device, precision: str):
    """Context manager running the forward pass in ``precision`` on ``device``."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=_AUTOCAST[precision])


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures that a smaller batch could avoid."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, (RuntimeError, MemoryError)) and (
        "out of memory" in message or "failed to allocate" in message or isinstance(error, MemoryError)
    )


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory a computation may still take on ``device`` (GPU memory or available RAM).

    None when it cannot be told (then fixed defaults are used).
    """
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "mps":
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, RuntimeError, AttributeError, ValueError):
        return None
    return None
