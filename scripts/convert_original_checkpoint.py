#!/usr/bin/env python
"""Convert an original DDRNet checkpoint (`.pth`) into a Hugging Face model folder.

Example:
    python scripts/convert_original_checkpoint.py --checkpoint DDRNet23s_imagenet.pth \
        --variant ddrnet-23-slim --output_dir checkpoints/ddrnet-23-slim-imagenet
"""

from __future__ import annotations

import argparse

from ddrnet_toolkit.cli import run_script
from modeling_ddrnet import VARIANTS, DDRNetConfig, DDRNetImageProcessor
from modeling_ddrnet.convert_original import convert_state_dict, load_original_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="Original .pth file (ImageNet or Cityscapes).")
    parser.add_argument("--variant", required=True, choices=list(VARIANTS), help="Architecture of the checkpoint.")
    parser.add_argument("--output_dir", required=True, help="Folder to write model.safetensors and configs to.")
    parser.add_argument("--no_auxiliary_head", action="store_true", help="Drop the auxiliary (training) head.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = DDRNetConfig.from_variant(args.variant, use_auxiliary_head=not args.no_auxiliary_head)
    model, report = convert_state_dict(load_original_checkpoint(args.checkpoint), config)
    print(report.summary())
    model.save_pretrained(args.output_dir)
    DDRNetImageProcessor().save_pretrained(args.output_dir)
    print(f"wrote {args.output_dir} (model.safetensors, config.json, preprocessor_config.json)")
    return 0


if __name__ == "__main__":
    run_script(main)
