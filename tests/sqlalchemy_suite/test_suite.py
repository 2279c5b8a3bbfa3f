"""Every test of ``sqlalchemy.testing.suite``; the requirements class skips what
lancesql does not support."""

from sqlalchemy.testing.suite import *  # noqa: F403
