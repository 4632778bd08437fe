"""Hookline's composition root: settings, wiring and the command line.

It is the only place that knows all three layers.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hookline")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
