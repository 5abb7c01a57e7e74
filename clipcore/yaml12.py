"""Values typed on a command line (``-p KEY VALUE``, ``--key value``) or written in
``book/params.yml``, read as YAML 1.2 (core schema) reads them.

PyYAML implements YAML 1.1, where ``1e-3`` is a *string* (a float needs a dot) and ``yes`` /
``no`` / ``on`` / ``off`` are booleans. The core schema of YAML 1.2 has ``1e-3 = 0.001``, only
``true`` / ``false`` as booleans, ``null`` / ``~`` / empty as null, and ints in decimal, ``0o``
octal or ``0x`` hex. :class:`Loader` is PyYAML's safe loader with exactly those implicit types,
so nothing loaded can construct an arbitrary Python object.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["Loader", "load", "parse_value"]


class Loader(yaml.SafeLoader):
    """The safe loader with the YAML 1.2 core schema's implicit types."""


# Drop YAML 1.1's implicit resolvers (bool yes/no, sexagesimal ints, floats needing a dot, ...).
Loader.yaml_implicit_resolvers = {}
_RESOLVERS = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", list("~nN") + [""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
]
for _tag, _regexp, _first in _RESOLVERS:
    Loader.add_implicit_resolver(_tag, re.compile(_regexp), _first)


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load(text: str):
    """``text`` as YAML 1.2 (core schema); raises ``yaml.YAMLError`` when it is malformed."""
    return yaml.load(text, Loader=Loader)


def parse_value(text: str, *, what: str):
    """One value typed on a command line; ``what`` names it (``"-p n_grid"``) in the one-line
    ``ValueError`` a malformed value raises."""
    try:
        return load(text)
    except yaml.YAMLError as err:
        reason = str(getattr(err, "problem", None) or err).splitlines()[0]
        raise ValueError(f"Invalid {what}: {text!r} is not valid YAML ({reason})") from None
