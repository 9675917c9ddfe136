#!/usr/bin/env python
"""The GPU check: inference, training steps, real training runs per precision, data loading, evaluation,
prediction, the demo app, multi-GPU, onnxruntime and torch.compile on the best device present, as one table.

The command lives in `ddrnet_toolkit.commands.gpu_check`
(`ddrnet-gpu-check` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.gpu_check import cli

if __name__ == "__main__":
    cli()
