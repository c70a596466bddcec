"""What an entry point needs before it imports the rest: the standard library only, so it is in place at once."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn


def interrupted() -> NoReturn:
    """Ctrl-C before any job ran: one line and exit status 1."""
    print("Interrupted before anything ran.", file=sys.stderr, flush=True)
    sys.exit(1)


@contextmanager
def starting() -> Iterator[None]:
    """Ctrl-C while an entry point imports, before shell() can catch it: one line and exit status 1, as shell()
    ends an interrupt before a job (which imports Lightning, for seconds), where Python prints the traceback of
    whichever import it hit."""
    try:
        yield
    except KeyboardInterrupt:
        interrupted()
