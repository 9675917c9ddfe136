"""Recipes: a script's options in a YAML file (`--config FILE`), with command-line flags taking precedence.

A recipe maps option names (the flags without `--`, e.g. `learning_rate: 0.01`, `crop_size: [1024, 1024]`,
`no_ohem: true`) to values. Each value goes through the option's own type, choices and count checks, so a file is
held to the same rules as the command line; an unknown key is refused with the file, the line and the closest
option name. The resolved configuration of a run (every option, after the file and the flags) is written back as
a recipe, so `--config <output_dir>/train_config.yaml` repeats the run.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

import yaml

from .cli import one_line
from .images import replace_atomically

CONFIG_OPTION = "config"
# Flags that act on the output folder rather than describe the training: a recipe neither sets nor records them,
# so that replaying a recorded run never replaces or resumes a run by surprise.
COMMAND_LINE_ONLY = ("overwrite_output_dir", "resume_from_checkpoint")
_NOT_OPTIONS = (CONFIG_OPTION, "help")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        f"--{CONFIG_OPTION}",
        metavar="FILE",
        default=None,
        help="A YAML recipe of option values (see configs/recipes/); flags given on the command line override it.",
    )


def parse_args_with_config(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse `argv` over the defaults that `--config FILE` sets; the file's errors exit through `parser.error`.

    A flag given on the command line also replaces the file's value of any option it excludes (a file's `variant`
    gives way to `--model_name_or_path`).
    """
    argv = sys.argv[1:] if argv is None else argv
    finder = argparse.ArgumentParser(add_help=False)
    finder.add_argument(f"--{CONFIG_OPTION}")
    path = finder.parse_known_args(argv)[0].config
    if path is None:
        return parser.parse_args(argv)
    try:
        values = read_recipe(Path(path), parser)
    except RecipeError as error:
        parser.error(str(error))
    given = options_on_command_line(parser, argv)
    for group in parser._mutually_exclusive_groups:
        if any(action.dest in given for action in group._group_actions):
            for action in group._group_actions:
                values.pop(action.dest, None)
    parser.set_defaults(**values)
    for action in parser._actions:
        if action.dest in values:
            action.required = False  # the file gives it
    return parser.parse_args(argv)


def options_on_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The options `argv` itself sets (parsed with every default suppressed)."""
    saved = [(action, action.default, action.required) for action in parser._actions]
    try:
        for action in parser._actions:
            action.default, action.required = argparse.SUPPRESS, False
        return set(vars(parser.parse_known_args(argv)[0]))
    finally:
        for action, default, required in saved:
            action.default, action.required = default, required


class RecipeError(ValueError):
    """A recipe file that cannot be applied; the message names the file (and line) at fault."""


def read_recipe(path: Path, parser: argparse.ArgumentParser) -> dict:
    """The option values of a recipe file, converted and checked as the parser would check the flags."""
    try:
        text = path.read_text()
    except OSError as error:
        raise RecipeError(f"--config {path}: {error.strerror or error}") from error
    try:
        document = yaml.compose(text)
    except yaml.YAMLError as error:
        raise RecipeError(f"--config {path}: not valid YAML: {one_line(error)}") from error
    if document is None:
        return {}
    if not isinstance(document, yaml.MappingNode):
        raise RecipeError(f"--config {path}: a recipe is a mapping of option names to values")
    actions = {action.dest: action for action in parser._actions if action.dest not in _NOT_OPTIONS}
    values: dict = {}
    for key_node, value_node in document.value:
        key, where = key_node.value, f"{path} line {key_node.start_mark.line + 1}"
        if key in COMMAND_LINE_ONLY:
            raise RecipeError(f"{where}: '{key}' acts on the output folder: give --{key} on the command line")
        if key not in actions:
            close = difflib.get_close_matches(key, list(actions), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RecipeError(f"{where}: unknown option '{key}'{hint}")
        if key in values:
            raise RecipeError(f"{where}: '{key}' is given twice")
        value = yaml.safe_load(yaml.serialize(value_node))
        values[key] = convert_value(actions[key], value, where)
    check_exclusive(parser, values, path)
    return values


def convert_value(action: argparse.Action, value, where: str):
    """`value` as the parser would store it for `action`, or a `RecipeError` naming the option."""
    name = action.dest
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: {name} is a switch: true or false, got {value!r}")
        return value
    if value is None:
        return None
    items = value if isinstance(value, list) else None
    if isinstance(action.nargs, int) and (items is None or len(items) != action.nargs):
        raise RecipeError(f"{where}: {name} takes a list of {action.nargs} values, got {value!r}")
    if action.nargs in ("+", "*") and items is None:
        raise RecipeError(f"{where}: {name} takes a list of values, got {value!r}")
    if action.nargs is None and items is not None:
        raise RecipeError(f"{where}: {name} takes one value, got a list")
    converted = [convert_item(action, item, where) for item in items] if items is not None else None
    return converted if converted is not None else convert_item(action, value, where)


def convert_item(action: argparse.Action, item, where: str):
    if isinstance(item, dict | list):
        raise RecipeError(f"{where}: {action.dest} takes a plain value, got {item!r}")
    try:
        converted = action.type(str(item)) if action.type is not None else str(item)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
        raise RecipeError(f"{where}: {action.dest}: invalid value {item!r} ({error})") from error
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise RecipeError(f"{where}: {action.dest}: invalid choice {item!r} (choose from {choices})")
    return converted


def check_exclusive(parser: argparse.ArgumentParser, values: dict, path: Path) -> None:
    """At most one option of each of the parser's mutually exclusive groups may be set by a file."""
    for group in parser._mutually_exclusive_groups:
        given = [action.dest for action in group._group_actions if values.get(action.dest) not in (None, False)]
        if len(given) > 1:
            raise RecipeError(f"--config {path}: {' and '.join(given)} cannot both be set")


def resolved_recipe(args: argparse.Namespace) -> dict:
    """Every option of a parsed run as a recipe: the config file is folded in, the command-line-only flags left out."""
    return {k: v for k, v in vars(args).items() if k not in (*_NOT_OPTIONS, *COMMAND_LINE_ONLY)}


def write_recipe(values: dict, path: Path, comment: str) -> None:
    """Write a recipe atomically (a half-written file is never read back as a recipe)."""
    text = "".join(f"# {line}\n" for line in comment.splitlines()) + yaml.safe_dump(values, sort_keys=False)
    replace_atomically(path, lambda temporary: temporary.write_text(text))
