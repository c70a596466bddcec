import hydra.utils
from hydra.errors import InstantiationException


class UserError(Exception):
    """A mistake in the user's input or options: shown as one line, without a traceback."""

    def __init__(self, message: str):
        # one line, whatever a column name holds
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


def instantiate(cfg, **kwargs):
    """hydra.utils.instantiate, with a user's mistake raised as itself rather than wrapped by Hydra."""
    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            name = str(cause).rsplit("argument", 1)[1].strip(" '\"")
            raise UserError(f"unknown option '{name}' for {cfg.get('_target_')}: check its spelling.") from None
        raise
