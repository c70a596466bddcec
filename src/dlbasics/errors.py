"""A user's mistake, and the one line it is shown as."""

import difflib
import errno
import importlib
import inspect
import os
import re
import shlex
import sys
import types
import typing
from pathlib import Path

import hydra.utils
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    ValidationError,
)


class UserError(Exception):
    """A mistake in the user's input or options: shown as one line, without a traceback."""

    def __init__(self, message: str):
        # one line, whatever a column name holds
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


def is_number(value, kinds: type | tuple = (int, float)) -> bool:
    """Whether value is a number of these kinds: YAML's true and false are bools, which Python counts as ints."""
    return isinstance(value, kinds) and not isinstance(value, bool)


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def disk_full(err: BaseException | None) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def _misconfiguration(err: BaseException) -> bool:
    """Whether err is Lightning's MisconfigurationException, without importing Lightning (seconds) where no job ran
    (dlbasics.command): one it raised was imported with it."""
    exceptions = sys.modules.get("lightning.fabric.utilities.exceptions")
    return exceptions is not None and isinstance(err, exceptions.MisconfigurationException)


def user_mistake(err: BaseException) -> UserError | None:
    """The error as a user's mistake, or None for anything else (a bug keeps its traceback).

    Besides our own checks: a required option left out (`???` in a config), Lightning's word for a
    misconfigured Trainer (e.g. trainer.accelerator=gpu on a machine without one), a package an option
    needs (trainer.accelerator=tpu, DeviceStatsMonitor on the CPU), an interpolation that names nothing,
    and a key the run needs taken out of the config.
    """
    if isinstance(err, UserError):
        return err
    if isinstance(err, MissingMandatoryValue):
        return UserError(f"{err.full_key} is required: add {err.full_key}=... to the command line.")
    if _misconfiguration(err):
        gpu = "No supported gpu backend found" in str(err)  # trainer=ddp, trainer.accelerator=gpu without one
        bars = "multiple progress bar callbacks" in str(err)  # +callbacks.bar={_target_: ...RichProgressBar}
        return UserError(
            first_line(err)
            + " (this machine has none: trainer=ddp_cpu trains with DDP on the CPU)" * gpu
            + " Add callbacks.progress=null to show yours in place of the project's progress line." * bars
        )
    if isinstance(err, ModuleNotFoundError) and not (err.name or "").startswith("dlbasics"):  # ours: a bug
        return UserError(f"{first_line(err)}: an option given needs a package that is not installed.")
    if isinstance(err, InterpolationResolutionError):  # data.batch_size='${nope}'
        where = f"{err.full_key}: " if err.full_key else ""  # instantiate() names the config entry where it has none
        return UserError(f"{where}{first_line(err)}: a ${{...}} names a key of the config, or an environment variable.")
    if isinstance(err, (ConfigAttributeError, ConfigKeyError)) and "not in struct" in str(err):  # ~model
        return UserError(taken_out(err.full_key))
    if disk_full(err):  # what was written stays whole: each file is written beside it, then renamed
        where = f" writing '{err.filename}'" if err.filename else ""
        return UserError(f"the disk is full{where}. Free some space, or give the run a directory on another disk.")
    return None


# the model's options that the data gives it (its sizes, and the output bias that starts at a target's mean)
FROM_DATA = ("n_features", "n_outputs", "output_offset")


def from_data(key: str) -> str:
    return f"model.{key} comes from the data, never from an option: leave it out."


def made_dir(option: str, path) -> Path:
    """The directory an option names, made now: one that cannot be made is named before anything runs."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        message = f"{option}: cannot make '{path}' ({err.strerror}). Give one you can write to: {option}=..."
        raise UserError(message) from None
    return Path(path)


def taken_out(key: str) -> str:
    return f"{key} is needed and not in the config (taken out with ~{key}?)."


UNQUOTED = "=~&#!;^`<>"  # characters Hydra's override grammar takes only in a quoted value
GIVEN_PATHS = ("data.path", "ckpt_path", "data_path", "input", "output")  # read or written: train, eval, predict
# keys whose value is a path: one with a comma, a space or ( ) in it is text to quote, never a sweep or a call
PATH_KEYS = (*GIVEN_PATHS, "hydra.run.dir", "hydra.sweep.dir")


def as_typed(value) -> str:
    """A value as the command line gives it to Hydra: quoted where its grammar would read it otherwise (a path
    with `=` in it, a sweep job's; a name in another script, data.target=価格)."""
    text = str(value)
    return f'"{text}"' if re.search(rf"[,:\s'\"\[\](){{}}{UNQUOTED}]", text) or not text.isascii() else text


def shell_quoted(argument: str) -> str:
    """An argument in single quotes, as the shell takes it whole: one with an apostrophe in it as shlex writes it."""
    return f"'{argument}'" if "'" not in argument else shlex.quote(argument)


def say_error(message) -> None:
    """A user's mistake, as one line on stderr."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def config_mistake(err: Exception, command: str, conf: Path | None = None, refused: dict | None = None) -> str | None:
    """One line for a command line Hydra could not compose, or None: a misspelt key or config choice named with
    the nearest ones, an override that does not parse named with the grammar. `command`: `python train.py`;
    `conf`: its config directory, whose groups' configs a key may belong to (callbacks/early_stopping.yaml);
    `refused`: keys the config leaves out as they are not supported, each with its message."""
    cause = err.__cause__
    if isinstance(err, MissingConfigException):  # data=irsi: "In 'train': Could not find 'data/irsi'"
        found = re.search(r"Could not (?:find|load) '(.+)/([^/']+)'", str(err))
        # logger=[tensorboard,foo]: "Could not load 'logger/foo'", with no options; the group's files are those
        choices = err.options or (sorted(p.stem for p in conf.glob(f"{found[1]}/*.yaml")) if found and conf else [])
        if not (found and choices):
            return first_line(err)
        group, name = found.groups()
        options = {o.lower(): o for o in choices}  # optimizer=SGD: sgd
        near = "".join(
            f" Did you mean {group}={options[m]}?" for m in difflib.get_close_matches(name.lower(), options, 1)
        )
        return f"{group}={name}: no such config.{near} Choose one of: {', '.join(choices)}."
    if isinstance(err, ConfigCompositionException) and isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        key = cause.full_key  # model.widht=10: "Could not override 'model.widht'", not in the config
        given = re.search(r"Could not override '([^']+)'", str(err))
        if given and given[1].startswith(f"{key}."):  # trainer.accelerator in eval.py: no trainer, an accelerator
            near = (
                exactly_named(cause.parent_node._get_root(), given[1].rpartition(".")[2]) if cause.parent_node else []
            )
            if near:
                return (
                    f"{given[1]}: no such key. Did you mean {' or '.join(near)}? `{command} --cfg job` shows every key."
                )
        if key in (refused or {}):  # trainer.fast_dev_run=true: not "+trainer.fast_dev_run adds it", then refused
            return refused[key]
        top, node = key.partition("/")[0], cause.parent_node
        if "/" in key and top != "hydra" and node is not None and top not in node._get_root():  # eval.py data/x=y
            return f"{top}=... is not an option of {command}: `{command} --help` shows its options."
        if "/" in key and conf is not None:  # hydra/lancher=basic: a config group, not a key
            above, _, name = key.rpartition("/")
            groups = config_groups(conf)
            beside = {g.rpartition("/")[2]: g for g in groups if g.rpartition("/")[0] == above}
            near = difflib.get_close_matches(name, beside, 1)
            listed = beside.values() or [g for g in groups if "/" not in g]  # data/foo: data has none inside
            fix = f"Did you mean {beside[near[0]]}?" if near else f"The config groups: {', '.join(listed)}."
            return f"{key}: no such config group. {fix} `{command} --help` shows each with its options."
        parent, _, name = key.rpartition(".")
        append = re.search(r"use (\+\S+)", str(err))
        typed = append.group(1)[1:] if append else f"{key}=..."  # the override as given, without Hydra's +
        if conf is not None and parent and "." not in parent and (conf / parent / f"{name}.yaml").is_file():
            return f"{key} is in the config once it is chosen: {parent}={name} {typed}"  # callbacks.early_stopping...
        group, _, inside = key.partition(".")
        others = other_configs(conf, group, inside) if conf is not None and inside else []
        if others:  # optimizer.momentum on adam, model.depth on the perceptron: an option of another choice
            return f"{key} is an option of {' or '.join(others)}, not of the {group} chosen: {others[0]} {typed}"
        node = cause.parent_node
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        takes, more = arguments(str(target)) if target else ([], True)
        if name in takes:  # optimizer.betas, trainer.max_time: an option of the class, which the config leaves out
            return f"{key} is not in the config, but an option of {target}: +{typed} adds it."
        keys = [k for k in getattr(node, "keys", list)() if not str(k).startswith("_")]
        prefix = f"{parent}." if parent else ""
        shown = {a: f"+{prefix}{a}" for a in takes if f"{prefix}{a}" not in (refused or {})}
        shown |= {str(k): f"{prefix}{k}" for k in keys}  # trainer.max_tim: +trainer.max_time, an option not held
        near = exactly_named(node._get_root(), name) if node is not None else []  # mode=max: monitor.mode
        near = near or [shown[k] for k in difflib.get_close_matches(COURSE_WORDS.get(name, name), shown, 1)]
        if not near and node is not None:  # epochs=100: trainer.max_epochs, elsewhere in the config
            near = nearest_keys(node._get_root(), key)
        return (  # a key near one there is was misspelt: +model.widht=10 would fail as an unknown option of MLP
            f"{key}: no such key."
            + (f" Did you mean {' or '.join(near)}?" if near else "")
            + (f" {parent or 'The config'} has: {', '.join(map(str, keys))}." if keys and not near else "")
            + (
                f" {append.group(1) if append else '+' + key + '=...'} adds a new key;"
                if read(node) and more and not near
                else ""
            )
            + f" `{command} --cfg job` shows every key."
        )
    if isinstance(err, ConfigCompositionException) and isinstance(cause, ValidationError):
        # hydra.job.chdir=maybe: a key of Hydra's own dataclasses, which type it (ours, from YAML, take any value;
        # check_types checks them against the class they are given to)
        given = re.search(r"Error merging override (.+)", str(err))
        override = given[1] if given else cause.full_key
        return f"{override}: {first_line(cause)}. `{command} --cfg hydra` shows Hydra's keys and their values."
    if isinstance(err, OverrideParseException) and "=" not in err.override:  # eval.py RUN/checkpoints/best.ckpt
        csv = {"python train.py": "data.path", "python predict.py": "input"}.get(command, "data_path")
        option = {".ckpt": "ckpt_path", ".csv": csv}.get(Path(err.override).suffix)
        fix = f"give it as {option}={as_typed(err.override)}" if option else "an option is key=value (seed=1)"
        return f"{err.override!r} is not key=value: {fix}."
    if isinstance(err, OverrideParseException):
        key, _, value = err.override.partition("=")
        # a sweep job's path (.../optimizer.lr=0.1/...), a column name in another script (data.target=価格)
        quoted = value.startswith(("'", '"'))
        # a list whose items a comma splits, each then quoted: data.features=[面積], [sepal length (cm)] (iris's)
        items = re.fullmatch(r"\[[^][{}'\"]+\]", value)
        # a home directory's ~, a path with = or #; in such a list, a column name's ( ) (elsewhere, a function's)
        odd = sorted({c for c in value if c in UNQUOTED + ("()" if items or key.lstrip("+") in PATH_KEYS else "")})
        if not quoted and (odd or not value.isascii()):
            what = f"{' and '.join(map(repr, odd))} in it" if odd else "letters beyond ASCII"
            typed = "[" + ",".join(f'"{v.strip()}"' for v in value[1:-1].split(",")) + "]" if items else as_typed(value)
            return (
                f"{key}: a value with {what} is quoted for Hydra: {shell_quoted(f'{key}={typed}')} (quotes as shown)."
            )
        if value.endswith(",") and "[" not in value:  # optimizer.lr=1e-3, 1e-2: the shell gave Hydra two arguments
            return f"{err.override!r} ends with a comma: write the values without spaces ({key}=a,b,c)."
        grammar = re.search(r"https://\S+", str(err))
        return f"{err.override!r} is not an override Hydra can read ({first_line(err)})." + (
            f" The grammar: {grammar.group(0)}" if grammar else ""
        )
    sweep = re.search(r"Ambiguous value for argument '([^=]+)=(.*)'$", str(err).splitlines()[0])
    if isinstance(err, ConfigCompositionException) and sweep:  # optimizer.lr=1e-3,1e-2 without -m
        key, value = sweep.groups()
        text = f"{shell_quoted(f'{key}={as_typed(value)}')} (quotes as shown)"
        if key.lstrip("+") in PATH_KEYS:  # hydra.run.dir=/tmp/a,b: a path, which takes no -m and no list
            return f"{key}: a path with ',' in it is quoted for Hydra: {text}."
        return (
            f"{key}={value} gives {value.count(',') + 1} values: to sweep over them, add -m ({command} -m "
            f"{key}={value}); for a list, brackets: {key}=[{value}]; for text, quotes: {text}."
        )
    if isinstance(err, ConfigCompositionException):  # +key=... for a key there already is, ~key for one there is not
        group = re.search(r"Multiple values for (\S+)\. To override a value use 'override \S+: (.+)'", str(err))
        if group:  # +experiment=ex2_iris_mlp: the group is in the defaults list already
            choice = f"{group[1]}={group[2]}"
            return f"+{choice}: {group[1]} is in the config already; choose it without the +: {choice}."
        group = re.search(r"Could not override '([^']+)'\. No match in the defaults list", str(err))
        if group:  # eval.py data=boston: a config group of train.py's, which this script does not compose
            return f"{group[1]}=... is not an option of {command}: `{command} --help` shows its options."
        return " ".join(str(err).split())
    return None


def config_groups(conf: Path) -> list[str]:
    """The config groups a command line chooses from: those of the config directory, Hydra's own
    (hydra/job_logging), and those its plugins register (hydra/launcher, hydra/sweeper)."""
    import hydra.conf
    from hydra.core.config_store import ConfigStore

    groups = set()
    for root in (conf, Path(hydra.conf.__file__).parent):
        groups |= {p.parent.relative_to(root).as_posix() for p in root.glob("*/**/*.yaml")}

    def walk(node: dict, prefix: str) -> None:
        for name, value in node.items():
            if isinstance(value, dict):
                groups.add(prefix + name)
                walk(value, f"{prefix}{name}/")

    walk(ConfigStore.instance().repo, "")
    return sorted(groups - {"hydra"})


def other_configs(conf: Path, group: str, key: str) -> list[str]:
    """The choices of a config group whose config has `key` (optimizer=sgd for momentum), as group=choice."""
    found, absent = [], object()
    for path in sorted(conf.glob(f"{group}/*.yaml")):
        value = OmegaConf.select(OmegaConf.load(path), key, default=absent, throw_on_resolution_failure=False)
        if value is not absent:
            found.append(f"{group}={path.stem}")
    return found


# the course's words for options that torch and Lightning name otherwise
COURSE_WORDS = {
    "learning_rate": "lr",
    "epochs": "max_epochs",
    "epoch": "max_epochs",
    "layers": "depth",
    "neurons": "width",
}


def nearest_keys(root, key: str, besides: str = "") -> list[str]:
    """The full keys anywhere in a config (Hydra's own and `besides` aside) whose last part is nearest to key's:
    optimizer.lr for lr or learning_rate, trainer.max_epochs for epochs; else named as the key is with an
    underscore for a dot (eval.py's data_path for data.path)."""
    leaves = {}

    def walk(node, prefix: str) -> None:
        for k in node:
            value = node._get_node(k)
            if isinstance(value, DictConfig):
                walk(value, f"{prefix}{k}.")
            elif not str(k).startswith("_"):
                leaves[f"{prefix}{k}"] = str(k)

    walk(root, "")
    leaves = {full: last for full, last in leaves.items() if not full.startswith("hydra.") and full != besides}
    name = key.rpartition(".")[2]
    for given in dict.fromkeys((COURSE_WORDS.get(name, name), key.replace(".", "_"))):  # epochs=100: once
        # closer than a misspelling within its own entry need be: callbacks.loss_landscape.resolution, an option
        # of none, is not trainer.precision (0.63 alike)
        near = difflib.get_close_matches(given, set(leaves.values()), 1, cutoff=0.7)
        if near:
            return sorted(full for full, last in leaves.items() if last == near[0])
    return []


def exactly_named(root, name: str) -> list[str]:
    """The full keys elsewhere in the config named `name` itself (mode=max: monitor.mode)."""
    return [full for full in nearest_keys(root, name) if full.rpartition(".")[2] == name]


def read(node) -> bool:
    """Whether a key added to this node of the config (+key=...) is read: by the class the node or an entry
    above it makes (_target_), or as a callback or logger entry; the others hold fixed options (seed, loss.name)."""
    while node is not None:
        if isinstance(node, DictConfig) and ("_target_" in node or node._key() in ("callbacks", "logger")):
            return True
        node = node._get_parent()
    return False


PLAIN = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}


def _admits(annotation) -> tuple[set, list] | None:
    """The plain types and Literal values an annotation admits, or None unless it is made of int, float,
    bool, str, None, paths and Literals alone (a list, a mapping or a class is the library's to check)."""
    if annotation in PLAIN:
        return {annotation}, []
    if isinstance(annotation, type) and issubclass(annotation, os.PathLike):  # a path, given as a string
        return {str}, []
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return set(), list(args)
    if origin in (typing.Union, types.UnionType):
        parts = [_admits(a) for a in args]
        if None not in parts:
            return set().union(*(kinds for kinds, _ in parts)), [v for _, values in parts for v in values]
    return None


def fits(value, kinds: set, values: list) -> bool:
    """Whether a value is of one of the plain types `kinds` (an int is a number), or one of `values`."""
    if any(type(value) is type(v) and value == v for v in values):
        return True
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return type(value) in kinds
    return (isinstance(value, int) and int in kinds) or (is_number(value) and float in kinds)


def _library_hints(target: str) -> dict:
    """The annotations of the parameters a library's class or function takes, also those our subclass of a
    library's class passes on to it (ours check their own parameters, sklearn-style)."""
    try:
        obj = _locate(target)
        classes = reversed(obj.__mro__) if inspect.isclass(obj) else []
        hints = {}
        for f in [vars(c)["__init__"] for c in classes if "__init__" in vars(c) and c is not object] or [obj]:
            if not getattr(f, "__module__", "dlbasics.").startswith("dlbasics."):  # a C slot has none: skipped
                hints.update(typing.get_type_hints(inspect.unwrap(f)))
        return hints
    except Exception:  # an unknown target is instantiate's to report; unreadable hints are not checked
        return {}


def arguments(target: str) -> tuple[list[str], bool]:
    """The options a _target_ takes by name (those with a default: the others are the code's to give, as the
    data's sizes), also those our subclass passes on to its library's class; and whether it takes others
    besides (**kwargs, as TensorBoardLogger passes them on to its SummaryWriter). Imports the target's module:
    for a message only. ([], True) where it cannot be read."""
    try:
        obj = _locate(target)
        inits = [vars(c)["__init__"] for c in obj.__mro__ if "__init__" in vars(c)] if inspect.isclass(obj) else [obj]
        names, more = [], True
        for f in inits:
            if f is object.__init__:
                break
            given = inspect.signature(f).parameters.values()
            names += [
                p.name
                for p in given
                if p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            more = any(p.kind is p.VAR_KEYWORD for p in given)
            if not more:
                break
        return names, more
    except Exception:  # a target that cannot be imported or read: its options are not known
        return [], True


def _locate(target: str):
    """The class or function a _target_ names (hydra.utils.get_object, which logs an error where there is none)."""
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _no_target(err: InstantiationException, key: str, target: str) -> UserError:
    """A _target_ that names nothing, with the nearest name its module has: the entry's own, or one inside it
    (+trainer.strategy={_target_: ...}), which Hydra's message names."""
    named, where = re.match(r"Error locating target '([^']+)'", str(err)), re.search(r"full_key: (\S+)", str(err))
    target, key = named[1] if named else target, where[1] if where else key
    module, _, name = target.rpartition(".")
    try:
        found = importlib.import_module(module)
        names = [n for n in dir(found) if not inspect.ismodule(getattr(found, n, None))]  # callbacks.callback
        near = difflib.get_close_matches(name, names, 1)
    except ImportError:
        near = []
    fix = f"Did you mean {module}.{near[0]}?" if near else "Check its spelling, and that its package is installed."
    return UserError(f"{key}._target_: there is no {target}. {fix}")


def check_types(cfg, key: str, target: str) -> None:
    """Each option given to a library's class must be of a type its signature names, where those are plain
    (`patience: int`, `max_epochs: Optional[int]`): a wrong one is one line now, not a TypeError
    epochs later, deep inside the run (as LightningCLI checks them)."""
    hints = _library_hints(target)
    for name in cfg:
        admits = _admits(hints[name]) if name in hints else None
        if admits is not None and not fits(value := cfg[name], *admits):
            kinds, values = admits
            words = [w for t, w in PLAIN.items() if t in kinds and not (t is int and float in kinds)]
            words += [f"one of {', '.join(map(repr, values))}"] if values else []
            raise UserError(f"{key}.{name} must be {' or '.join(words)}; got {value!r}.")


def unknown_option(key: str, name: str, target: str) -> UserError:
    """An option `target` does not take, which a preset may have given (adam.yaml's fused, to another optimizer)."""
    return UserError(
        f"{key}: unknown option '{name}' for {target}: check its spelling, or take it out: '~{key}.{name}'."
    )


def instantiate(cfg, key: str | None = None, **kwargs):
    """hydra.utils.instantiate, with a user's mistake raised as one line that names the config entry
    (`key`, by default the config's own place in the composed config).

    The checks that torch's optimizers and Lightning's classes make of their arguments (ValueError,
    TypeError, MisconfigurationException, a package an option needs) are about the options the user gave them.
    """
    target = str(cfg.get("_target_", ""))
    key = key or (cfg._get_full_key(None) if hasattr(cfg, "_get_full_key") else None) or target
    if target:
        check_types(cfg, key, target)
    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except InterpolationResolutionError as err:  # resolved before anything is made: most often it names no key
        mistake = user_mistake(err)
        raise UserError(str(mistake) if err.full_key else f"{key}: {mistake}") from None
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, UserError):
            raise cause from None  # ours: it names its option
        if str(err).startswith("Error locating target"):  # optimizer._target_=torch.optim.Adamm
            raise _no_target(err, key, target) from None
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            name = str(cause).rsplit("argument", 1)[1].strip(" '\"")
            raise unknown_option(key, name, target) from None
        library_check = isinstance(cause, (ValueError, TypeError)) and not target.startswith("dlbasics.")
        mistake = user_mistake(cause) if cause is not None else None
        if library_check or mistake is not None:
            raise UserError(f"{key}: {mistake or first_line(cause)}") from None
        raise
