"""Read and validate a version 1 policy file into a `Policy`.

Works on PyYAML's node graph (`yaml.compose` with `SafeLoader`), never on
constructed objects, so every value keeps its line and nothing is executed.
Every problem becomes one `PolicyError` in yamllint's spirit:
``smtpgate.yml:7: approvals[0].bind: 'loopbak' is not one of ...``.
"""

from __future__ import annotations

import datetime
import difflib
import os
import re
from collections.abc import Collection, Iterator, Sequence
from typing import Callable, NoReturn, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from smtpgate.errors import PolicyError
from smtpgate.model import BindScope, Outcome, State
from smtpgate.policy.rules import Approval, Bind, Defaults, Policy, normal_ip

SUPPORTED_VERSIONS = (1,)
MAX_BYTES = 1024 * 1024  # a policy is a few lines; refuse to slurp a wrong path's gigabytes
TOP_KEYS = ("version", "defaults", "approvals")
DEFAULT_CHOICES = {
    "loopback": ("pass", "warn", "fail"),
    "listening": ("pass", "warn", "fail"),
    "enabled": ("auto", "pass", "warn", "fail"),
    "installed": ("pass", "warn", "fail"),
    "lmtp": ("same", "pass", "warn", "fail"),
}
APPROVAL_KEYS = ("software", "ports", "bind", "state", "reason", "owner", "expires", "images", "workloads")
BIND_WORDS = tuple(scope.value for scope in BindScope)
STATE_WORDS = tuple(state.value for state in State)

_YAML = "tag:yaml.org,2002:"
_PLAIN_TAGS = {
    _YAML + t for t in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
}
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SOFTWARE_ID = re.compile(r"[a-z][a-z0-9._+-]*")
T = TypeVar("T")


def load_policy(
    path: str | os.PathLike[str],
    *,
    known_software: Collection[str] | None = None,
) -> Policy:
    """Read and validate the policy file at `path`; PolicyError names what is wrong."""
    source = os.fspath(path)
    return policy_from_text(_read_text(source), source, known_software=known_software)


def _read_text(source: str) -> str:
    """The file as UTF-8 text (a BOM is fine); OS and decoding errors become PolicyError."""
    try:
        with open(source, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise PolicyError(f"{source}: cannot read policy file: {err.strerror or err}") from err
    if len(data) > MAX_BYTES:
        raise PolicyError(f"{source}: policy file is larger than {MAX_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise PolicyError(
            f"{source}:{line}: not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}"
        ) from err


def policy_from_text(
    text: str, source: str, *, known_software: Collection[str] | None = None
) -> Policy:
    """Validate policy text; `source` names it in messages and approval sources.

    `known_software`, when given, is the set of registry ids an approval may
    name; otherwise any well-formed id is accepted.
    """
    root = _compose(text, source)
    known = None if known_software is None else frozenset(s.lower() for s in known_software)
    return _Reader(source, known).policy(root)


def _compose(text: str, source: str) -> Node | None:
    """Parse YAML into nodes, turning every parser complaint into a PolicyError."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        raise PolicyError(_yaml_message(err, source)) from err
    except yaml.YAMLError as err:  # ReaderError: a character YAML does not allow
        line = text.count("\n", 0, getattr(err, "position", 0)) + 1
        raise PolicyError(f"{source}:{line}: invalid YAML: {_first_line(err)}") from err
    except RecursionError as err:
        raise PolicyError(f"{source}: invalid policy: YAML nested too deeply") from err
    if root is not None:
        _check_tags(root, source)
    return root


def _yaml_message(err: yaml.MarkedYAMLError, source: str) -> str:
    """`file:line:column: invalid YAML: problem`, with a hint for a bare `*`."""
    mark = err.problem_mark or err.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    problem, context = err.problem or "", err.context or ""
    if problem.startswith("but ") and context:  # "expected a single document ... but found"
        problem = f"{context} {problem}"
    elif context.startswith("while "):
        problem = f"{problem} ({context})" if problem else context
    if "alias" in context:
        problem += '; to mean any software write "*" in quotes'
    elif "<block end>" in problem or "mapping values are not allowed" in problem:
        problem += "; check the indentation"
    return f"{where}: invalid YAML: {problem}"


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _check_tags(root: Node, source: str) -> None:
    """Refuse explicit tags (`!foo`, `!!python/...`): a policy is plain YAML."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in _PLAIN_TAGS and node.tag != _YAML + "merge":
            line = node.start_mark.line + 1
            raise PolicyError(
                f"{source}:{line}: unsupported YAML tag {node.tag!r}; "
                "a policy file uses plain YAML values"
            )
        stack.extend(_children(node))


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value


class _Reader:
    """Turns a node graph into a Policy; each method validates one part."""

    def __init__(self, source: str, known_software: frozenset[str] | None) -> None:
        self.source = source
        self.known = known_software

    def fail(self, node: Node, where: str, message: str) -> NoReturn:
        """Raise `source:line: where: message` for the value at `node`."""
        prefix = f"{where}: " if where else ""
        raise PolicyError(f"{self.source}:{node.start_mark.line + 1}: {prefix}{message}")

    # -- the document -----------------------------------------------------

    def policy(self, root: Node | None) -> Policy:
        """The whole file: `version` (required), `defaults`, `approvals`."""
        if root is None:
            raise PolicyError(
                f"{self.source}:1: the policy file is empty; it needs at least 'version: 1'"
            )
        if not isinstance(root, MappingNode):
            self.fail(
                root,
                "",
                f"a policy must be a mapping with keys {_words(TOP_KEYS, 'and')}; "
                f"this file holds {_describe(root)}",
            )
        fields = self.mapping(root, "", TOP_KEYS)
        if "version" not in fields:
            self.fail(root, "", "missing required key 'version'; add 'version: 1'")
        self.version(fields["version"])
        defaults = self.defaults(fields["defaults"]) if "defaults" in fields else Defaults()
        approvals = self.approvals(fields["approvals"]) if "approvals" in fields else ()
        return Policy(source=self.source, defaults=defaults, approvals=approvals)

    def mapping(self, node: Node, where: str, allowed: Sequence[str]) -> dict[str, Node]:
        """The mapping's values by key, after checking each key is known and unique."""
        if not isinstance(node, MappingNode):
            self.fail(
                node,
                where,
                f"expected a mapping with keys {_words(allowed, 'or')}, got {_describe(node)}",
            )
        fields: dict[str, Node] = {}
        lines: dict[str, int] = {}
        for key, value in node.value:
            name = self.key(key, where, allowed)
            if name in fields:
                self.fail(key, where, f"duplicate key {name!r} (first at line {lines[name]})")
            fields[name], lines[name] = value, key.start_mark.line + 1
        return fields

    def key(self, key: Node, where: str, allowed: Sequence[str]) -> str:
        """A key's name; unknown keys are errors naming the allowed ones."""
        if not isinstance(key, ScalarNode):
            self.fail(key, where, f"keys must be plain words, got {_describe(key)}")
        if key.tag == _YAML + "merge":
            self.fail(key, where, "merge keys ('<<') are not supported; write the keys out")
        if key.value not in allowed:
            hint = difflib.get_close_matches(key.value, allowed, n=1)
            guess = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.fail(
                key, where, f"unknown key {key.value!r}{guess}; allowed keys: {', '.join(allowed)}"
            )
        return str(key.value)

    def version(self, node: Node) -> None:
        """`version: 1`, the only format this smtpgate reads."""
        version = self.integer(node, "version")
        if version not in SUPPORTED_VERSIONS:
            supported = ", ".join(map(str, SUPPORTED_VERSIONS))
            self.fail(
                node,
                "version",
                f"unsupported version {version}; this smtpgate reads version {supported}",
            )

    # -- defaults ---------------------------------------------------------

    def defaults(self, node: Node) -> Defaults:
        """`defaults:` — each key optional, each value one of its choices."""
        if _is_null(node):
            return Defaults()
        fields = self.mapping(node, "defaults", tuple(DEFAULT_CHOICES))
        chosen = {
            name: self.choice(value, f"defaults.{name}", DEFAULT_CHOICES[name])
            for name, value in fields.items()
        }
        outcomes = {name: _outcome(word) for name, word in chosen.items()}
        return Defaults(**outcomes)  # type: ignore[arg-type]  # None only for enabled/lmtp

    def choice(self, node: Node, where: str, choices: Sequence[str]) -> str:
        """One word out of `choices`."""
        word = self.word(node, where, f"one of {_words(choices, 'or')}")
        if word not in choices:
            self.fail(node, where, f"{word!r} is not one of {_words(choices, 'or')}")
        return word

    # -- approvals --------------------------------------------------------

    def approvals(self, node: Node) -> tuple[Approval, ...]:
        """`approvals:` — a list of approval mappings (null or [] for none)."""
        if _is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.fail(node, "approvals", f"expected a list of approvals, got {_describe(node)}")
        return tuple(self.approval(item, f"approvals[{i}]") for i, item in enumerate(node.value))

    def approval(self, node: Node, where: str) -> Approval:
        """One approval; `reason` is required, every other key narrows what it covers."""
        fields = self.mapping(node, where, APPROVAL_KEYS)
        if "reason" not in fields:
            self.fail(
                node, where, "missing required key 'reason' (say why this SMTP service is allowed)"
            )
        get = fields.get
        return Approval(
            reason=self.text(fields["reason"], f"{where}.reason"),
            source=f"{self.source}:{node.start_mark.line + 1}",
            software=self.software(get("software"), f"{where}.software"),
            ports=self.items(get("ports"), f"{where}.ports", self.port),
            bind=self.items(get("bind"), f"{where}.bind", self.bind),
            state=self.items(get("state"), f"{where}.state", self.state),
            owner=self.text(fields["owner"], f"{where}.owner") if "owner" in fields else None,
            expires=self.date(fields["expires"], f"{where}.expires")
            if "expires" in fields
            else None,
            images=self.items(get("images"), f"{where}.images", self.pattern),
            workloads=self.items(get("workloads"), f"{where}.workloads", self.pattern),
        )

    def items(
        self,
        node: Node | None,
        where: str,
        parse: Callable[[Node, str], T],
    ) -> tuple[T, ...]:
        """A value or a list of values, each parsed by `parse`; absent means any."""
        if node is None:
            return ()
        if isinstance(node, SequenceNode):
            if not node.value:
                self.fail(node, where, "empty list; leave the key out to mean any")
            values = [parse(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        else:
            values = [parse(node, where)]
        return tuple(dict.fromkeys(values))

    def software(self, node: Node | None, where: str) -> tuple[str, ...]:
        """Registry ids; `"*"` anywhere in the list means any software."""
        ids = self.items(node, where, self.software_id)
        return () if "*" in ids else ids

    def software_id(self, node: Node, where: str) -> str:
        word = self.word(node, where, 'a software id such as postfix, or "*"').lower()
        if word != "*" and not _SOFTWARE_ID.fullmatch(word):
            self.fail(
                node,
                where,
                f"{node.value!r} is not a software id (a letter, then letters, "
                'digits and . _ + -, such as postfix or exim), or "*" for any',
            )
        if word != "*" and self.known is not None and word not in self.known:
            hint = difflib.get_close_matches(word, sorted(self.known), n=1)
            guess = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.fail(
                node,
                where,
                f"unknown software {node.value!r}{guess}; "
                f'known: {", ".join(sorted(self.known))}, or "*" for any',
            )
        return word

    def pattern(self, node: Node, where: str) -> str:
        """A glob (`*`, `?`, `[...]`) on an image reference or a workload name."""
        word = self.word(node, where, "a name or glob such as 'registry.example/relay:*' or 'Deployment/mail#*'")
        if not word.strip() or word != word.strip():
            self.fail(node, where, f"{word!r}: a name or glob has no surrounding spaces and is not empty")
        if word.count("[") != word.count("]"):
            self.fail(node, where, f"{word!r}: unbalanced [ ] in the glob")
        return word

    def port(self, node: Node, where: str) -> int:
        port = self.integer(node, where, "a port number (1..65535)")
        if not 1 <= port <= 65535:
            self.fail(node, where, f"port {port} is out of range 1..65535")
        return port

    def bind(self, node: Node, where: str) -> Bind:
        """`loopback`, `all`, `specific`, or one IPv4/IPv6 address (normalised)."""
        allowed = f"one of {', '.join(BIND_WORDS[:-1])}, {BIND_WORDS[-1]} or an IP address"
        word = self.word(node, where, allowed)
        if word in BIND_WORDS:
            return BindScope(word)
        try:
            return normal_ip(word)
        except ValueError:
            self.fail(node, where, f"{word!r} is not {allowed}")

    def state(self, node: Node, where: str) -> State:
        return State(self.choice(node, where, STATE_WORDS))

    # -- scalars ----------------------------------------------------------

    def word(self, node: Node, where: str, wanted: str) -> str:
        """A scalar's text as written, whatever YAML reads it as (`1:2:3:4:5:6:7:8` is
        an int to YAML 1.1 but an IPv6 address here; `no` stays `no`)."""
        if not isinstance(node, ScalarNode) or _is_null(node):
            self.fail(node, where, f"expected {wanted}, got {_describe(node)}")
        return str(node.value)

    def integer(self, node: Node, where: str, wanted: str = "an integer") -> int:
        """A plain decimal integer (YAML 1.1 reads `025` as octal and `1:30` as 90)."""
        if not isinstance(node, ScalarNode) or node.tag != _YAML + "int":
            self.fail(node, where, f"expected {wanted}, got {_describe(node)}")
        if not _DECIMAL.fullmatch(node.value):
            self.fail(
                node,
                where,
                f"write {node.value!r} as a plain decimal number, such as 25 "
                "(YAML reads leading zeros, 0x, 0o, _ and ':' in other ways)",
            )
        return int(node.value)

    def text(self, node: Node, where: str) -> str:
        """Non-empty free text (reason, owner); numbers and dates are taken as written."""
        if not isinstance(node, ScalarNode):
            self.fail(node, where, f"expected text, got {_describe(node)}")
        if _is_null(node) or not node.value.strip():
            self.fail(node, where, "must not be empty")
        return str(node.value).strip()

    def date(self, node: Node, where: str) -> datetime.date:
        """An ISO calendar date, YYYY-MM-DD, that exists."""
        example = "write a date as YYYY-MM-DD, such as 2027-03-31"
        if not isinstance(node, ScalarNode) or _is_null(node):
            self.fail(node, where, f"expected a date, got {_describe(node)}; {example}")
        match = _DATE.fullmatch(node.value.strip())
        if match is None:
            self.fail(node, where, f"{node.value!r} is not a date; {example}")
        try:
            return datetime.date(*(int(part) for part in match.groups()))
        except ValueError as err:
            self.fail(node, where, f"{node.value!r} is not a valid date ({err}); {example}")


def _outcome(word: str) -> Outcome | None:
    """`auto` and `same` mean "no fixed outcome" (None); the rest are outcomes."""
    return None if word in ("auto", "same") else Outcome(word)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _YAML + "null"


def _words(words: Sequence[str], last: str) -> str:
    """`a, b or c` for messages."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _describe(node: Node) -> str:
    """What a value is, for "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kind = {
        "null": "nothing",
        "bool": "a boolean",
        "int": "an integer",
        "float": "a number",
        "timestamp": "a date",
        "str": "text",
    }.get(node.tag[len(_YAML) :], "a value")
    return kind if kind == "nothing" else f"{kind} {node.value!r}"
