"""How a run talks to its user: one-line messages and progress bars (the CLI draws them with rich)."""
from __future__ import annotations

from typing import Callable

#: prints one message line
Reporter = Callable[[str], None]
#: ``update(completed)`` of one progress bar
Bar = Callable[[int], None]
#: ``make_bar(label, total) -> update``
BarFactory = Callable[[str, int], Bar]


def no_bar(label: str, total: int) -> Bar:
    """A progress bar that shows nothing (no progress display, or a test)."""
    return lambda completed: None
