class UserError(Exception):
    """A mistake in the user's input or options: shown as one line, without a traceback."""
