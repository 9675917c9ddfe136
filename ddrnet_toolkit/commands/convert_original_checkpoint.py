"""Convert an original DDRNet checkpoint (`.pth`) into a Hugging Face model folder.

An output folder that already holds a model is refused unless --overwrite_output_dir is given; then the files an
earlier model left there (weights, configs, eval_results.json, training_args.json, labels.json) are removed, so
that no stale evaluation result is later published with the converted weights. Other files in the folder are kept.
The new files are written beside the folder first and moved in only after the conversion succeeded.

Example:
    python scripts/convert_original_checkpoint.py --checkpoint DDRNet23s_imagenet.pth \\
        --variant ddrnet-23-slim --output_dir checkpoints/ddrnet-23-slim-imagenet
"""

from __future__ import annotations

import argparse
import os

from modeling_ddrnet import VARIANTS, DDRNetConfig, DDRNetImageProcessor
from modeling_ddrnet.convert_original import CheckpointConversionError, convert_state_dict, load_original_checkpoint

from ..errors import UserInputError
from ..files import check_folder_creatable, staging_folder
from ..model_folder import model_files
from .runner import entry_point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="Original .pth file (ImageNet or Cityscapes).")
    parser.add_argument("--variant", required=True, choices=list(VARIANTS), help="Architecture of the checkpoint.")
    parser.add_argument("--output_dir", required=True, help="Folder to write model.safetensors and configs to.")
    parser.add_argument("--no_auxiliary_head", action="store_true", help="Drop the auxiliary (training) head.")
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Replace a model already in --output_dir, removing its eval_results.json and training_args.json.",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output_dir = check_folder_creatable(args.output_dir, "--output_dir")
    stale = model_files(output_dir)
    if stale and not args.overwrite_output_dir:
        raise UserInputError(
            f"--output_dir {output_dir} already holds a model ({', '.join(p.name for p in stale)}); pass "
            "--overwrite_output_dir to replace it, or choose another folder"
        )
    config = DDRNetConfig.from_variant(args.variant, use_auxiliary_head=not args.no_auxiliary_head)
    checkpoint = load_original_checkpoint(args.checkpoint)
    try:
        model, report = convert_state_dict(checkpoint, config)
    except CheckpointConversionError as error:
        raise CheckpointConversionError(f"{args.checkpoint}: {error}") from error
    print(report.summary())

    output_dir.mkdir(parents=True, exist_ok=True)
    with staging_folder(output_dir) as staging:
        model.save_pretrained(staging)
        DDRNetImageProcessor(align_corners=config.align_corners).save_pretrained(staging)
        for path in model_files(output_dir):
            path.unlink()
        for path in sorted(staging.iterdir()):
            os.replace(path, output_dir / path.name)
    removed = [p.name for p in stale if not (output_dir / p.name).exists()]
    print(
        f"wrote {output_dir} (model.safetensors, config.json, preprocessor_config.json)"
        + (f"; removed the previous model's {', '.join(removed)}" if removed else "")
    )
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
