#!/usr/bin/env python
"""Publish a trained DDRNet to a local hub folder: <hub_dir>/<ORG>/<NAME>/ with the weights (safetensors), configs,
the modeling code for `trust_remote_code=True`, and a model card (README.md) with the evaluation results.

Pushing again updates the folder in place: stale files are removed, and the changes are listed.

Example:
    python scripts/push_to_hub.py --model_name_or_path outputs/ddrnet-23-slim/best_model --hub_dir hub \\
        --repo_id my-org/ddrnet-23-slim-cityscapes --sample_image street.png
"""

from __future__ import annotations

import argparse

from ddrnet_toolkit.cli import run_script
from ddrnet_toolkit.hub import publish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="Saved model folder (with eval_results.json).")
    parser.add_argument("--hub_dir", required=True, help="Root of the local hub.")
    parser.add_argument("--repo_id", required=True, help="ORG/NAME.")
    parser.add_argument("--sample_image", default=None, help="An image to show with its prediction in the card.")
    args = parser.parse_args(argv)
    target, changes = publish(args.model_name_or_path, args.hub_dir, args.repo_id, args.sample_image)
    print(f"pushed {args.model_name_or_path} to {target}: {changes.summary()}")
    return 0


if __name__ == "__main__":
    run_script(main)
