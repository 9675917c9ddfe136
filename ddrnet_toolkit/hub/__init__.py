"""Publishing a trained model as a Hub-style repository folder with its model card and Gradio demo app."""

from .model_card import model_card
from .publish import RepoChanges, publish

__all__ = ["RepoChanges", "model_card", "publish"]
