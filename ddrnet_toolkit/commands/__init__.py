"""The command-line programs, one module each, with a `main(argv)` and a `cli()` entry point: `ddrnet-train`,
`ddrnet-eval`, `ddrnet-predict`, `ddrnet-push-to-hub`, `ddrnet-export-onnx`, `ddrnet-convert-original-checkpoint`,
`ddrnet-make-lists`, `ddrnet-make-synthetic-cityscapes`, `ddrnet-make-synthetic-custom`, `ddrnet-benchmark`,
`ddrnet-benchmark-data`, `ddrnet-gpu-check`. `scripts/*.py` call the same entry points, and `accelerate launch -m
ddrnet_toolkit.commands.train` works too. Argument parsing, and mapping the library's refusals to flag names, happen
here only."""
