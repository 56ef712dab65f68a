"""Former name of ``math`` (kept while other modules move over; import ``.math`` instead)."""

from .math import *  # noqa: F403
