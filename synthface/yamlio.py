"""The one way synthface reads YAML (scenarios, mask definitions, palettes, recipes, `--set` values).

Safe loading (no Python objects) plus limits a configuration file never needs but a bad or
hostile file would abuse:

- size: files over MAX_YAML_BYTES are refused before parsing (a 10 MB scenario took 90 s and
  2 GB before pydantic rejected it);
- nesting depth: deeper than MAX_YAML_DEPTH is refused while composing, so a deeply nested
  document gives an error instead of a RecursionError;
- duplicate keys: refused with both line numbers (PyYAML keeps the last silently, so
  `n_samples: 8` followed by `n_samples: 20000` made 20,000 samples);
- text: a binary file, a folder or a device is named as such, not decoded into noise.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from synthface.errors import UserError
from synthface.paths import file_problem

MAX_YAML_BYTES = 1 << 20  # 1 MiB: the largest bundled file is under 2 KB, a photo template's outline a few KB
MAX_YAML_DEPTH = 32  # the deepest bundled document nests 4 levels


class YamlError(UserError):
    """A YAML file or value cannot be read; the message names the file (and line) and what was expected."""


class _LimitedSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys and documents nested deeper than MAX_YAML_DEPTH."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"line {mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges are meant to be overridden
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                line = key_node.start_mark.line + 1
                if key in first_line:
                    raise yaml.YAMLError(f"line {line}: duplicate key {key!r} (first given on line {first_line[key]}); "
                                         "each key may appear once")
                first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _parse(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_LimitedSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise YamlError(f"{source}: not valid YAML: {error}") from None


def load_yaml_text(text: str, source: str = "<text>") -> object:
    """Parse a YAML string (e.g. a `--set` value) under the same limits as a file."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise YamlError(f"{source}: {len(text)} characters; YAML input is limited to {MAX_YAML_BYTES // 1024} KiB")
    return _parse(text, source)


def read_text_file(path: Path | str, what: str = "YAML file", max_bytes: int = MAX_YAML_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; YamlError naming the file otherwise."""
    path = Path(path)
    if problem := file_problem(path, f"a {what}"):
        raise YamlError(problem)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # never read more than the limit, whatever the file claims
    except OSError as error:
        raise YamlError(f"{path}: cannot be read ({error.strerror or error}); expected a {what}") from None
    if len(data) > max_bytes:
        raise YamlError(f"{path}: larger than {max_bytes // 1024} KiB; a {what} is a few KB (refused before parsing)")
    nul = data.find(b"\0")
    if nul >= 0:
        raise YamlError(f"{path}: binary content (a NUL byte at offset {nul}); expected a {what} (UTF-8 text)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise YamlError(f"{path}: not UTF-8 text (byte {error.start} cannot be decoded); expected a {what}") from None


def load_yaml_file(path: Path | str, what: str = "YAML file") -> object:
    """Read and parse one YAML file under the limits above; YamlError naming the file otherwise."""
    return _parse(read_text_file(path, what), str(path))
