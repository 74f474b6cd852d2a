"""The ladder's rungs, top to bottom, and the dtype each computes in."""

from __future__ import annotations

from kademe.embed.model import resolve_dtype

RUNGS = ("gpu", "gpu-batch1", "gpu-small", "cpu")


def rung_dtypes(setting: str, gpu: bool = True, device: str = "cuda") -> dict[str, str]:
    """The dtype each rung computes in for ``--dtype``: GPU rungs resolve it for CUDA; the cpu rung is float32 unless bfloat16 was asked for.

    Args:
        setting: the ``--dtype`` setting.
        gpu: whether the GPU rungs apply (else only the cpu rung is listed).
        device: where the GPU rungs compute (``cpu`` under the fake card).

    Example:
        >>> rung_dtypes("float32")["cpu"], rung_dtypes("bfloat16")["cpu"]
        ('float32', 'bfloat16')
    """
    cpu = {"cpu": "bfloat16" if setting == "bfloat16" else "float32"}
    if not gpu:
        return cpu
    half = resolve_dtype(setting, device)
    return {"gpu": half, "gpu-batch1": half, "gpu-small": half, **cpu}
