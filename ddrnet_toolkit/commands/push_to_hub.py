"""Publish a trained DDRNet to a local hub folder: <hub_dir>/<ORG>/<NAME>/ with the weights (safetensors), configs,
the modeling code for `trust_remote_code=True`, and a model card (README.md) with the evaluation results.

The folder also gets a Gradio demo: app.py, requirements.txt and up to 4 example images (--sample_image and
--example_images, scaled down to 1024 pixels). `python app.py` in the folder serves it on http://127.0.0.1:7860,
and the card's front matter makes the folder a Gradio Space. An app.py or requirements.txt of your own (without the
"Written by ddrnet-hf push_to_hub.py" line) is kept.

Pushing again updates the folder in place and lists the changes: files an earlier push wrote and this one does not
are removed; files you added yourself (a LICENSE, .gitattributes, ...) are kept. --repo_id must be a valid Hub id
ORG/NAME; the folder it names always lies inside --hub_dir.

Example:
    python scripts/push_to_hub.py --model_name_or_path outputs/ddrnet-23-slim/best_model --hub_dir hub \\
        --repo_id my-org/ddrnet-23-slim-cityscapes --sample_image street.png --example_images night.jpg rain.jpg
"""

from __future__ import annotations

import argparse

from ..hub.publish import publish, repo_id_problem
from .runner import entry_point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="Saved model folder (with eval_results.json).")
    parser.add_argument("--hub_dir", required=True, help="Root of the local hub.")
    parser.add_argument("--repo_id", required=True, help="ORG/NAME.")
    parser.add_argument(
        "--sample_image",
        default=None,
        help="An image to show with its prediction in the card; also the demo's first example.",
    )
    parser.add_argument(
        "--example_images",
        nargs="+",
        default=[],
        metavar="IMAGE",
        help="More example images for the demo (app.py); at most 4 examples in all.",
    )
    args = parser.parse_args(argv)
    problem = repo_id_problem(args.repo_id)
    if problem is not None:
        parser.error(f"--repo_id {args.repo_id!r} is not a Hub model id (ORG/NAME): {problem}")
    target, changes = publish(
        args.model_name_or_path, args.hub_dir, args.repo_id, args.sample_image, example_images=args.example_images
    )
    print(f"pushed {args.model_name_or_path} to {target}: {changes.summary()}")
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
