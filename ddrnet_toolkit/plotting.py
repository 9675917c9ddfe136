"""matplotlib for the figures (training curves, the scaling run), imported only when a figure is drawn."""

from __future__ import annotations

from .errors import UserInputError


def import_pyplot():
    """matplotlib's pyplot on a backend that needs no display, or a `UserInputError` saying how to install it."""
    try:
        import matplotlib
    except ImportError as error:
        raise UserInputError('plotting needs matplotlib: pip install matplotlib (or ".[benchmark]")') from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot
