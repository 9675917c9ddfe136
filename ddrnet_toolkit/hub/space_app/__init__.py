"""The Gradio demo that `push_to_hub.py` writes into every published repo folder, so the folder is also a Space.

`app.py` beside this file is the template, copied as it is: it imports only gradio, torch, transformers, numpy and
pillow (never this project) and loads the model from the folder it lives in with `trust_remote_code=True`. This
module only names the template and the lines that go with it; importing it does not import gradio.
"""

from __future__ import annotations

from pathlib import Path

APP_TEMPLATE = Path(__file__).with_name("app.py")
APP_FILE = "app.py"
REQUIREMENTS_FILE = "requirements.txt"
# The first line of the files above that a push writes. A later push replaces a file only while the line is there:
# a user who deletes it (or who had their own app.py or requirements.txt before) keeps their version.
PUSH_MARKER = "Written by ddrnet-hf push_to_hub.py"
# The Gradio release the template is tested with; the card's `sdk_version` makes a Space install exactly this one.
GRADIO_SDK_VERSION = "6.31.0"
# What `pip install -r requirements.txt` needs to run app.py outside a Space; the lower bounds of the shared
# packages are the package's own (setup.cfg `install_requires`), since the remote code needs the same versions.
REQUIREMENTS = (
    "gradio>=6.31,<7",
    "torch>=2.4",
    "transformers>=5.17",
    "safetensors>=0.4",
    "numpy>=1.26",
    "pillow>=10.0",
)


def requirements_text() -> str:
    """The content of the repo's requirements.txt, marked as written by a push."""
    header = f"# {PUSH_MARKER}; delete this line to keep your own version. Run app.py with these packages."
    return "\n".join([header, *REQUIREMENTS]) + "\n"


def written_by_push(path: Path) -> bool:
    """Whether `path` is an app.py or requirements.txt that a push wrote: its first two lines hold `PUSH_MARKER`
    (app.py starts with a shebang). Unreadable or binary content is the user's."""
    try:
        with path.open(encoding="utf-8") as handle:
            head = [handle.readline() for _ in range(2)]
    except (OSError, UnicodeDecodeError):
        return False
    return any(PUSH_MARKER in line for line in head)
