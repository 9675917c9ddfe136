"""Inference replayed from a CUDA graph: the kernels of one forward pass captured once, then launched together, so
that the host's launch overhead leaves the timing (what matters at batch 1, where DDRNet's kernels are small)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def cuda_graph_step(
    model: torch.nn.Module, pixel_values: torch.Tensor, dtype: torch.dtype | None = None
) -> tuple[Callable[[], torch.Tensor], torch.Tensor]:
    """Capture `model` (eval mode, e.g. the fast path) on the CUDA tensor `pixel_values` `(B, 3, H, W)`, logits
    upsampled to `(H, W)` as every inference row is timed, under autocast to `dtype` when given.

    Returns `(replay, eager)`: `replay()` runs the graph and returns its (static) output tensor, and `eager` is the
    same forward pass run without the graph, to check the graph against.
    """
    height, width = pixel_values.shape[-2:]
    static_input = pixel_values.clone()

    def forward() -> torch.Tensor:
        # No weight-cast cache under capture: the graph must own every cast it replays.
        with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None, cache_enabled=False):
            logits = model(static_input).logits
        return F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=False)

    with torch.inference_mode():
        # Warm up on a side stream (cuDNN autotuning, the allocator's pools), as capture requires.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                eager = forward()
        torch.cuda.current_stream().wait_stream(side)
        eager = eager.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = forward()

    def replay() -> torch.Tensor:
        graph.replay()
        return static_output

    return replay, eager
