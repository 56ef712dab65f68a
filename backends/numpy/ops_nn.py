"""Former name of ``nn`` (kept while other modules move over; import ``.nn`` instead)."""

from .nn import *  # noqa: F403
