"""A user's mistake, and the one line it is shown as."""

import hydra.utils
from hydra.errors import InstantiationException
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf.errors import MissingMandatoryValue


class UserError(Exception):
    """A mistake in the user's input or options: shown as one line, without a traceback."""

    def __init__(self, message: str):
        # one line, whatever a column name holds
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


def is_number(value, kinds: type | tuple = (int, float)) -> bool:
    """Whether value is a number of these kinds: YAML's true and false are bools, which Python counts as ints."""
    return isinstance(value, kinds) and not isinstance(value, bool)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def user_mistake(err: BaseException) -> UserError | None:
    """The error as a user's mistake, or None for anything else (a bug keeps its traceback).

    Besides our own checks: a required option left out (`???` in a config), and Lightning's word for a
    misconfigured Trainer (e.g. trainer.accelerator=gpu on a machine without one).
    """
    if isinstance(err, UserError):
        return err
    if isinstance(err, MissingMandatoryValue):
        return UserError(f"{err.full_key} is required: add {err.full_key}=... to the command line.")
    if isinstance(err, MisconfigurationException):
        return UserError(_first_line(err))
    return None


def instantiate(cfg, key: str | None = None, **kwargs):
    """hydra.utils.instantiate, with a user's mistake raised as one line that names the config entry
    (`key`, by default the config's own place in the composed config).

    The checks that torch's optimizers and Lightning's classes make of their arguments (ValueError,
    TypeError, MisconfigurationException) are about the options the user gave them.
    """
    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause, target = err.__cause__, str(cfg.get("_target_", ""))
        if isinstance(cause, UserError):
            raise cause from None  # ours: it names its option
        key = key or (cfg._get_full_key(None) if hasattr(cfg, "_get_full_key") else None) or target
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            name = str(cause).rsplit("argument", 1)[1].strip(" '\"")
            raise UserError(f"{key}: unknown option '{name}' for {target}: check its spelling.") from None
        library_check = isinstance(cause, (ValueError, TypeError)) and not target.startswith("dlbasics.")
        mistake = user_mistake(cause) if cause is not None else None
        if library_check or mistake is not None:
            raise UserError(f"{key}: {mistake or _first_line(cause)}") from None
        raise
