"""Speed measurements, timed the paper's way: the networks per mode, int8 against fp32, the data pipeline, the
metric."""

from .timing import Measurement, markdown_table, time_callable

__all__ = ["Measurement", "markdown_table", "time_callable"]
