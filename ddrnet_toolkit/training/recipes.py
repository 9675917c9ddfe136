"""Recipes: a script's options in a YAML file (`--config FILE`), with command-line flags taking precedence.

A recipe maps option names (the flags without `--`, e.g. `learning_rate: 0.01`, `crop_size: [1024, 1024]`,
`no_ohem: true`) to values. Each value goes through the option's own type, choices and count checks, so a file is
held to the same rules as the command line; an unknown key is refused with the file, the line and the closest
option name. The resolved configuration of a run (every option, after the file and the flags) is written back as
a recipe, so `--config <output_dir>/train_config.yaml` repeats the run.

What a recipe needs of the script's `argparse` parser (its options, their types and counts, which options exclude
each other, which flags a command line gives) is read in one place, `ParserOptions`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import one_line
from ..files import write_text_atomically

CONFIG_OPTION = "config"
# Recipes are a few dozen lines; anything much larger is not one.
MAX_RECIPE_BYTES = 100_000
STRING_TAG = "tag:yaml.org,2002:str"
SEQUENCE_TAG = "tag:yaml.org,2002:seq"
PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null"))
# Flags that act on the output folder rather than describe the training: a recipe neither sets nor records them,
# so that replaying a recorded run never replaces or resumes a run by surprise.
COMMAND_LINE_ONLY = ("overwrite_output_dir", "resume_from_checkpoint")
_NOT_OPTIONS = (CONFIG_OPTION, "help")


class RecipeError(ValueError):
    """A recipe file that cannot be applied; the message names the file (and line) at fault."""


@dataclass(frozen=True)
class OptionSpec:
    """What a recipe value of one option is held to: a switch takes true or false; otherwise `count` values (an
    int, `+`/`*` for a list, None for one value), each converted by `convert` and one of `choices`."""

    name: str
    switch: bool
    count: int | str | None
    convert: Callable[[str], Any] | None
    choices: Sequence | None
    required: bool = False


class ParserOptions:
    """The one reader of an `argparse` parser's internals: its options, its mutually exclusive groups, which options
    a command line gives, and parsing over new defaults."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser
        self.specs = {
            action.dest: OptionSpec(
                action.dest,
                isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction),
                action.nargs,
                action.type,
                action.choices,
                action.required,
            )
            for action in parser._actions
            if action.dest not in _NOT_OPTIONS
        }
        self.exclusive_groups = [[a.dest for a in group._group_actions] for group in parser._mutually_exclusive_groups]

    def given_on_command_line(self, argv: list[str]) -> set[str]:
        """The options `argv` itself sets (parsed with every default suppressed)."""
        saved = [(action, action.default, action.required) for action in self.parser._actions]
        try:
            for action in self.parser._actions:
                action.default, action.required = argparse.SUPPRESS, False
            return set(vars(self.parser.parse_known_args(argv)[0]))
        finally:
            for action, default, required in saved:
                action.default, action.required = default, required

    def parse_over(self, defaults: dict, argv: list[str]) -> argparse.Namespace:
        """Parse `argv` with `defaults` in place of the parser's; an option they give is no longer required."""
        self.parser.set_defaults(**defaults)
        for action in self.parser._actions:
            if action.dest in defaults:
                action.required = False
        return self.parser.parse_args(argv)


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
    options = ParserOptions(parser)
    try:
        values = read_recipe(Path(path), options)
    except RecipeError as error:
        parser.error(str(error))
    given = options.given_on_command_line(argv)
    for group in options.exclusive_groups:
        if given.intersection(group):
            for name in group:
                values.pop(name, None)
    return options.parse_over(values, argv)


def read_recipe(path: Path, options: ParserOptions | argparse.ArgumentParser) -> dict:
    """The option values of a recipe file, converted and checked as the parser would check the flags.

    A recipe is untrusted input: its size is bounded, anchors and aliases (which can expand a small file into
    billions of values) and tags are refused, and each value is one plain value or one flat list of them.
    """
    if isinstance(options, argparse.ArgumentParser):
        options = ParserOptions(options)
    document = parse_recipe(path)
    if document is None:
        return {}
    values: dict = {}
    for key_node, value_node in document.value:
        where = f"{path} line {key_node.start_mark.line + 1}"
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STRING_TAG:
            raise RecipeError(f"{where}: a recipe's keys are option names, got a {node_kind(key_node)}")
        key = key_node.value
        if key in COMMAND_LINE_ONLY:
            raise RecipeError(f"{where}: '{key}' acts on the output folder: give --{key} on the command line")
        if key not in options.specs:
            close = difflib.get_close_matches(key, list(options.specs), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise RecipeError(f"{where}: unknown option {shown(key)}{hint}")
        if key in values:
            raise RecipeError(f"{where}: '{key}' is given twice")
        check_plain(value_node, key, where)
        values[key] = convert_value(options.specs[key], yaml.safe_load(yaml.serialize(value_node)), where)
    check_exclusive(options.exclusive_groups, values, path)
    return values


def parse_recipe(path: Path) -> yaml.MappingNode | None:
    """The recipe's YAML as nodes (nothing constructed), or a `RecipeError` naming the file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RecipeError(f"--config {path}: {error.strerror or error}") from error
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError(f"--config {path}: {len(data)} bytes, more than a recipe needs ({MAX_RECIPE_BYTES})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(f"--config {path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1
                raise RecipeError(f"{path} line {line}: anchors and aliases (&name, *name) are not allowed in a recipe")
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise RecipeError(f"--config {path}: not valid YAML: {one_line(error)}") from error
    if document is not None and not isinstance(document, yaml.MappingNode):
        raise RecipeError(f"--config {path}: a recipe is a mapping of option names to values")
    return document


def node_kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}.get(type(node), f"value tagged {node.tag}")


def check_plain(node: yaml.Node, key: str, where: str) -> None:
    """A value is a plain scalar or a flat list of them, with YAML's own types only (no `!!python/...` tag)."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if isinstance(node, yaml.SequenceNode) and node.tag != SEQUENCE_TAG:
        raise RecipeError(f"{where}: {key}: tags such as {shown(node.tag)} are not allowed in a recipe")
    for item in items:
        if not isinstance(item, yaml.ScalarNode):
            raise RecipeError(f"{where}: {key} takes a plain value or a list of them, got a {node_kind(item)}")
        if item.tag not in PLAIN_TAGS:
            raise RecipeError(f"{where}: {key}: tags such as {shown(item.tag)} are not allowed in a recipe")


def shown(value) -> str:
    """A value for a message, cut short: a recipe is untrusted, and its values can be long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def convert_value(spec: OptionSpec, value, where: str):
    """`value` as the parser would store it for the option, or a `RecipeError` naming the option."""
    name = spec.name
    if spec.switch:
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: {name} is a switch: true or false, got {shown(value)}")
        return value
    if value is None:
        if spec.required:
            raise RecipeError(f"{where}: {name} is required: give a value, not null")
        return None
    items = value if isinstance(value, list) else None
    if isinstance(spec.count, int) and (items is None or len(items) != spec.count):
        raise RecipeError(f"{where}: {name} takes a list of {spec.count} values, got {shown(value)}")
    if spec.count in ("+", "*") and items is None:
        raise RecipeError(f"{where}: {name} takes a list of values, got {shown(value)}")
    if spec.count is None and items is not None:
        raise RecipeError(f"{where}: {name} takes one value, got a list")
    if items is not None:
        return [convert_item(spec, item, where) for item in items]
    return convert_item(spec, value, where)


def convert_item(spec: OptionSpec, item, where: str):
    if isinstance(item, dict | list):
        raise RecipeError(f"{where}: {spec.name} takes a plain value, got {shown(item)}")
    try:
        converted = spec.convert(str(item)) if spec.convert is not None else str(item)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
        raise RecipeError(f"{where}: {spec.name}: invalid value {shown(item)} ({error})") from error
    if spec.choices is not None and converted not in spec.choices:
        choices = ", ".join(map(str, spec.choices))
        raise RecipeError(f"{where}: {spec.name}: invalid choice {shown(item)} (choose from {choices})")
    return converted


def check_exclusive(groups: list[list[str]], values: dict, path: Path) -> None:
    """At most one option of each mutually exclusive group may be set by a file."""
    for group in groups:
        given = [name for name in group if values.get(name) not in (None, False)]
        if len(given) > 1:
            raise RecipeError(f"--config {path}: {' and '.join(given)} cannot both be set")


def resolved_recipe(options: dict) -> dict:
    """Every option of a parsed run as a recipe: the config file is folded in, the command-line-only flags left out."""
    return {k: v for k, v in options.items() if k not in (*_NOT_OPTIONS, *COMMAND_LINE_ONLY)}


def write_recipe(values: dict, path: Path, comment: str) -> None:
    """Write a recipe atomically (a half-written file is never read back as a recipe)."""
    text = "".join(f"# {line}\n" for line in comment.splitlines()) + yaml.safe_dump(values, sort_keys=False)
    write_text_atomically(path, text)
