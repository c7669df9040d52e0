"""Walk a shell script's parse tree (tree-sitter-bash) the way the script would run by default.

Not an interpreter: nothing is executed. The walk follows the script's control
flow with what is known before it runs — the environment it is given (the
image's ENV, or a deployment's), its positional parameters (the image's CMD
after an entrypoint script: `exec "$@"`), the assignments it makes on the way
(`X=1`, `export X=...`, `set -- exim -bd "$@"`, `shift`) and its functions —
and yields every simple command it would run, with the condition under which
it runs when that condition cannot be decided:

- `if`/`elif`/`else`, `case`, `a && b`, `a || b` on `[ ... ]`, `[[ ... ]]`,
  `test`, `true`/`false`: decided with the known values; a variable the
  environment does not set is empty (the image's default) but a deployment may
  set it, so a branch that is off only because it is unset is still walked,
  under its condition ("may start when ...").
- A condition that depends on anything else (a command's result, `$(...)`,
  arithmetic, `read`) cannot be decided: both branches are walked, each under
  its condition.
- Loop bodies are walked once (a `for` over words or globs once per value, at
  most `MAX_FOR`); a function body once per call (at most `MAX_CALLS` deep, no
  recursion); an unconditional `exec` or `exit` ends the walk.

Bounded on hostile input: at most `MAX_BYTES` of text, `MAX_NODES` nodes
visited, `MAX_DEPTH` levels of nesting (deeper is reported and skipped).
tree-sitter never fails on bad syntax: it marks ERROR nodes, whose contents
are still walked, and that is reported.

Why tree-sitter and not bashlex: tree-sitter-bash is maintained with the
grammar the editors use, parses in C (a megabyte in milliseconds, nothing
recursive in Python while parsing), and recovers from syntax errors, where
bashlex (unmaintained since 2023) raises on constructs it does not know
(arrays, `[[`, many expansions) and recurses in Python on deep nesting.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

MAX_BYTES = 1 << 20
MAX_NODES = 50_000
MAX_DEPTH = 150
MAX_FOR = 20
MAX_CALLS = 8
MAX_CONDITION = 160
MAX_TRIM = 4096  # ${X#pattern} on longer values: not worked out

_LANGUAGE = Language(tree_sitter_bash.language())
_NUMERIC = {"-eq": "==", "-ne": "!=", "-lt": "<", "-le": "<=", "-gt": ">", "-ge": ">="}
_FILE_TESTS = {"-e", "-f", "-d", "-x", "-s", "-r", "-w", "-L", "-h", "-S", "-p", "-b", "-c", "-g", "-u", "-k", "-O",
               "-G", "-N"}


class _Stop(Exception):
    """The script ends here (an unconditional exec or exit)."""


class _Return(Exception):
    """`return` in a function."""


@dataclass(frozen=True)
class Value:
    """A word's value: `text` (the source text when not `known`), `certain` False when it came
    from a variable the environment does not set (a deployment may set it)."""

    text: str
    known: bool = True
    certain: bool = True


@dataclass(frozen=True)
class Truth:
    """A condition: its value by default (None: cannot tell), whether that is certain, its source text."""

    value: bool | None
    certain: bool
    text: str


@dataclass(frozen=True)
class RawCommand:
    """A simple command as the walk reaches it."""

    argv: tuple[str, ...]
    line: int
    exec_: bool
    background: bool
    condition: str
    loop: bool = False  # in a loop body (walked once, may run many times)
    skipped: bool = False  # in a branch the environment given rules out (`condition` says which)


@dataclass
class _State:
    vars: dict[str, tuple[str | None, bool]]  # name -> (value or None unknown, certain)
    args: list[str] | None  # None: positional parameters unknown
    arg0: str
    functions: dict[str, Node] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    visited: int = 0
    subshell: int = 0
    background: int = 0
    loops: int = 0
    skipped: int = 0


def walk(text: str, *, env: dict[str, str] | None = None, args: list[str] | tuple[str, ...] | None = None,
         arg0: str = "sh", problems: list[str] | None = None, where: str = "",
         exists: Callable[[str], bool] | None = None, glob: Callable[[str], list[str]] | None = None,
         ) -> list[RawCommand]:
    """Every simple command `text` would run, in order, with its condition ("" = unconditional)."""
    problems = problems if problems is not None else []
    # tree-sitter-bash 0.25's scanner crashes the process on `{` followed by some code points past
    # U+7FFFF (found by fuzzing): parse an ASCII copy. Nothing smtpgate looks for is non-ASCII.
    data = _NON_ASCII.sub("_", text).encode("ascii")
    if len(data) > MAX_BYTES:
        problems.append(f"{where}: script larger than {MAX_BYTES} bytes; only the start is read")
        data = data[:MAX_BYTES]
    tree = Parser(_LANGUAGE).parse(data)
    state = _State({k: (v, True) for k, v in (env or {}).items()}, list(args) if args is not None else None, arg0)
    walker = _Walker(state, problems, where, exists or (lambda _p: False), glob or (lambda _p: []))
    if tree.root_node.has_error:
        problems.append(f"{where}: shell syntax errors; the script is read as far as it parses")
    try:
        walker.block(tree.root_node.children, 0)
    except (_Stop, _Return):
        pass
    return walker.out


class _Walker:
    def __init__(self, state: _State, problems: list[str], where: str, exists: Callable[[str], bool],
                 glob: Callable[[str], list[str]]) -> None:
        self.s = state
        self.problems = problems
        self.where = where
        self.exists = exists
        self.glob = glob
        self.out: list[RawCommand] = []
        self._noted: set[str] = set()
        self.exhausted = False
        self._depth = 0  # of conditions and word values being worked out

    def _note(self, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self.problems.append(text)

    # -- statements --------------------------------------------------------------

    def block(self, children: list[Node], depth: int) -> None:
        for i, node in enumerate(children):
            background = i + 1 < len(children) and children[i + 1].type == "&"
            self.stmt(node, depth, background)

    def stmt(self, node: Node, depth: int, background: bool = False) -> None:
        self.s.visited += 1
        if self.s.visited > MAX_NODES and not self.exhausted:
            self.exhausted = True  # from here on: each node once (loops and functions are not repeated)
            self._note(f"{self.where}: more than {MAX_NODES} shell nodes walked (loops, function calls); the rest "
                       "is read once, without repeating loops or following calls")
        if depth > MAX_DEPTH:
            self._note(f"{self.where}:{node.start_point[0] + 1}: shell nested more than {MAX_DEPTH} deep; not read")
            return
        kind = node.type
        handler = getattr(self, f"_s_{kind}", None)
        if handler is not None:
            handler(node, depth + 1, background)
        elif kind in ("program", "compound_statement", "do_group", "ERROR"):
            self.block(node.named_children, depth + 1)

    def _s_command(self, node: Node, depth: int, background: bool) -> None:
        name = node.child_by_field_name("name")
        if name is None:  # only assignments: they set variables
            for child in node.named_children:
                if child.type == "variable_assignment":
                    self._assign(child)
            return
        argv: list[str] = []
        for child in node.children:
            if child.type in ("command_name", "word", "string", "raw_string", "concatenation", "simple_expansion",
                              "expansion", "number", "command_substitution", "arithmetic_expansion",
                              "ansi_c_string", "translated_string"):
                if child.type == "command_name":
                    child = child.named_children[0] if child.named_children else child
                argv += self.fields(child)
        if not argv:
            return
        line = node.start_point[0] + 1
        background = background or self.s.background > 0
        if self._builtin(argv, line, background):
            return
        function = self.s.functions.get(argv[0])
        if function is not None and argv[0] not in self.s.calls and len(self.s.calls) < MAX_CALLS \
                and not self.exhausted:
            self._call(argv, function, depth, background)
            return
        exec_ = argv[0] == "exec" and not self.s.subshell and not background
        self.out.append(RawCommand(tuple(argv), line, exec_ and not self.s.skipped, background, self.condition,
                                   self.s.loops > 0, self.s.skipped > 0))
        if exec_ and len(argv) > 1 and not self.s.conditions:
            raise _Stop

    def _builtin(self, argv: list[str], line: int, background: bool) -> bool:
        name = argv[0]
        if name == "set" and "--" in argv:
            if not self.s.conditions:  # under an undecided condition: the default path keeps its parameters
                self.s.args = argv[argv.index("--") + 1:]
            return True
        if name == "set":
            return True
        if name == "shift":
            n = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 1
            if self.s.args is not None:
                self.s.args = self.s.args[n:]
            return True
        if name == "exit" and not self.s.subshell and not background:
            if not self.s.conditions:
                raise _Stop
            return True
        if name == "return" and self.s.calls:
            if not self.s.conditions:
                raise _Return
            return True
        return name in ("echo", "printf", ":", "true", "false", "export", "local", "readonly", "unset", "cd")

    def _call(self, argv: list[str], body: Node, depth: int, background: bool) -> None:
        saved = self.s.args
        self.s.args = argv[1:]
        self.s.calls.append(argv[0])
        try:
            self.stmt(body, depth + 1, background)
        except _Return:
            pass
        finally:
            self.s.calls.pop()
            self.s.args = saved

    def _s_function_definition(self, node: Node, depth: int, background: bool) -> None:
        name, body = node.child_by_field_name("name"), node.child_by_field_name("body")
        if name is not None and body is not None:
            self.s.functions[_text(name)] = body

    def _s_variable_assignment(self, node: Node, depth: int, background: bool) -> None:
        self._assign(node)

    def _s_declaration_command(self, node: Node, depth: int, background: bool) -> None:
        for child in node.named_children:
            if child.type == "variable_assignment":
                self._assign(child)

    def _assign(self, node: Node) -> None:
        name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
        if name is None:
            return
        if value is None:
            self.s.vars[_text(name)] = ("", True)
            return
        got = self.value(value)
        self.s.vars[_text(name)] = (got.text if got.known else None, got.certain and got.known)

    def _s_redirected_statement(self, node: Node, depth: int, background: bool) -> None:
        body = node.child_by_field_name("body")
        if body is not None:  # heredoc bodies are data, not commands
            self.stmt(body, depth, background)

    def _s_subshell(self, node: Node, depth: int, background: bool) -> None:
        self.s.subshell += 1
        self.s.background += background
        try:
            self.block(node.named_children, depth)
        except _Stop:
            pass
        finally:
            self.s.subshell -= 1
            self.s.background -= background

    def _s_pipeline(self, node: Node, depth: int, background: bool) -> None:
        self.s.subshell += 1
        try:
            for child in node.named_children:
                self.stmt(child, depth, background)
        except _Stop:
            pass
        finally:
            self.s.subshell -= 1

    def _s_negated_command(self, node: Node, depth: int, background: bool) -> None:
        for child in node.named_children:
            self.stmt(child, depth, background)

    def _s_list(self, node: Node, depth: int, background: bool) -> None:
        """`a && b || c ...`, left to right: each item runs when the status so far allows it
        (a test is decided where it can be, a command is taken to succeed, not certainly)."""
        chain = _chain(node)
        status: Truth | None = None
        for op, item in chain:
            test = _is_test(item)
            if status is None:
                run = Truth(True, True, "")
            else:
                run = status if op == "&&" else _not(status)
                if run.value is False and run.certain:
                    continue
            self._push(run)
            try:
                got = self.truth(item, depth) if test else Truth(True, False, _brief(item))
                if not test:
                    self.stmt(item, depth, background)
            finally:
                self._pop(run)
            if status is None:
                status = got
            elif op == "&&":
                status = _and(status, got)
            else:
                status = _or(status, got)

    def _s_if_statement(self, node: Node, depth: int, background: bool) -> None:
        conditions = node.children_by_field_name("condition")
        body = [c for c in node.named_children if c not in conditions and c.type not in ("elif_clause", "else_clause")]
        rest = [c for c in node.named_children if c.type in ("elif_clause", "else_clause")]
        self._if(conditions, body, rest, depth, background)

    def _if(self, conditions: list[Node], body: list[Node], rest: list[Node], depth: int, background: bool) -> None:
        truth = self._conditions(conditions, depth)
        self._branch(truth, body, depth, background)
        if truth.value is True and truth.certain or not rest:
            return
        negated = Truth(None if truth.value is None else not truth.value, truth.certain, f"not ({truth.text})")
        self._push(negated)
        try:
            clause = rest[0]
            if clause.type == "else_clause":
                self.block(clause.named_children, depth)
            else:
                named = clause.named_children
                conds = [named[0]] if named else []
                self._if(conds, named[1:], rest[1:], depth, background)
        finally:
            self._pop(negated)

    def _conditions(self, nodes: list[Node], depth: int) -> Truth:
        nodes = [n for n in nodes if n.is_named]
        if not nodes:
            return Truth(True, True, "true")
        for n in nodes[:-1]:
            self.stmt(n, depth)
        last = nodes[-1]
        truth = self.truth(last, depth)
        if truth.value is None and not _is_test(last):
            self.stmt(last, depth)
        return truth

    def _branch(self, truth: Truth, body: list[Node], depth: int, background: bool) -> None:
        if truth.value is False and truth.certain:
            self._ruled_out(truth, body, depth, background)
            return
        self._push(truth)
        try:
            for i, node in enumerate(body):
                bg = background or (i + 1 < len(body) and body[i + 1].type == "&")
                self.stmt(node, depth, bg)
        finally:
            self._pop(truth)

    def _ruled_out(self, truth: Truth, body: list[Node], depth: int, background: bool) -> None:
        """A branch the environment rules out is walked too, its commands marked `skipped` (so a
        report can say what a deployment that changes the variable would start); what it assigns,
        shifts or defines is undone."""
        if self.s.skipped or self.exhausted:
            return
        saved = (dict(self.s.vars), None if self.s.args is None else list(self.s.args), dict(self.s.functions),
                 list(self.s.conditions))
        self.s.skipped += 1
        self.s.conditions.append(truth.text[:MAX_CONDITION])
        try:
            for node in body:
                self.stmt(node, depth, background)
        except (_Stop, _Return):
            pass
        finally:
            self.s.skipped -= 1
            self.s.vars, self.s.args, self.s.functions, self.s.conditions = saved

    def _push(self, truth: Truth) -> None:
        if truth.value is not True:
            self.s.conditions.append(truth.text[:MAX_CONDITION])

    def _pop(self, truth: Truth) -> None:
        if truth.value is not True:
            self.s.conditions.pop()

    def _s_case_statement(self, node: Node, depth: int, background: bool) -> None:
        subject = node.child_by_field_name("value")
        value = self.value(subject) if subject is not None else Value("", False, False)
        shown = _text(subject) if subject is not None else "?"
        taken = False
        for item in (c for c in node.named_children if c.type == "case_item"):
            patterns = item.children_by_field_name("value")
            body = [c for c in item.named_children if c not in patterns]
            words = [self.value(p).text for p in patterns]
            text = f"{shown} matches {'|'.join(words)}"
            if value.known and not taken and any(fnmatch.fnmatchcase(value.text, w) for w in words):
                taken = True
                self._branch(Truth(True, value.certain, text), body, depth, background)
            else:
                self._branch(Truth(None if not value.known else False, value.certain and value.known, text), body,
                             depth, background)

    def _s_for_statement(self, node: Node, depth: int, background: bool) -> None:
        var = node.child_by_field_name("variable")
        body = node.child_by_field_name("body")
        if var is None or body is None:
            return
        values: list[str] = []
        known = True
        for word in node.children_by_field_name("value"):
            got = self.value(word)
            known = known and got.known
            if got.known and any(ch in got.text for ch in "*?["):
                values += self.glob(got.text) or []
            else:
                values += got.text.split() if got.known else [got.text]
        self.s.loops += 1
        repeat = 1 if self.exhausted or self.s.loops > 1 else MAX_FOR  # nested loops: once, or they multiply
        if len(values) > repeat:
            values, known = values[:1], False
        try:
            for value in values or [""]:
                self.s.vars[_text(var)] = (value if known else None, known)
                self.stmt(body, depth, background)
        finally:
            self.s.loops -= 1

    def _s_while_statement(self, node: Node, depth: int, background: bool) -> None:
        conditions = node.children_by_field_name("condition")
        truth = self._conditions(conditions, depth)
        until = node.children[0].type == "until"
        if truth.certain and truth.value is (True if until else False):
            return
        self._loop(node, depth, background)

    def _s_c_style_for_statement(self, node: Node, depth: int, background: bool) -> None:
        self._loop(node, depth, background)

    def _loop(self, node: Node, depth: int, background: bool) -> None:
        body = node.child_by_field_name("body")
        if body is None:
            return
        self.s.loops += 1
        try:
            self.stmt(body, depth, background)
        finally:
            self.s.loops -= 1

    @property
    def condition(self) -> str:
        return " and ".join(f"`{c}`" for c in self.s.conditions)

    # -- conditions --------------------------------------------------------------

    def truth(self, node: Node, depth: int) -> Truth:
        text = " ".join(_text(node)[:4 * MAX_CONDITION].split())[:MAX_CONDITION]
        if self._depth > MAX_DEPTH:
            self._note(f"{self.where}:{node.start_point[0] + 1}: condition nested more than {MAX_DEPTH} deep; "
                       "taken as undecided")
            return Truth(None, False, text)
        self._depth += 1
        try:
            return self._truth(node, depth, text)
        finally:
            self._depth -= 1

    def _truth(self, node: Node, depth: int, text: str) -> Truth:
        kind = node.type
        if kind == "test_command":
            inner = node.named_children
            return self._test_expr(inner[0], text) if len(inner) == 1 else Truth(None, False, text)
        if kind == "negated_command" and node.named_children:
            got = self.truth(node.named_children[-1], depth)
            return Truth(None if got.value is None else not got.value, got.certain, text)
        if kind == "list":
            status: Truth | None = None
            for op, item in _chain(node):
                got = self.truth(item, depth)
                status = got if status is None else _and(status, got) if op == "&&" else _or(status, got)
            return Truth(status.value, status.certain, text) if status is not None else Truth(None, False, text)
        if kind == "redirected_statement" and node.child_by_field_name("body") is not None:
            body = node.child_by_field_name("body")
            assert body is not None
            return self.truth(body, depth)
        if kind == "command":
            argv = self._words(node)
            if argv and argv[0].text in ("true", ":"):
                return Truth(True, True, text)
            if argv and argv[0].text == "false":
                return Truth(False, True, text)
            if argv and argv[0].text in ("test", "["):
                args = argv[1:-1] if argv[0].text == "[" and argv[-1].text == "]" else argv[1:]
                return self._test_args(args, text)
        return Truth(None, False, text)

    def _words(self, node: Node) -> list[Value]:
        out: list[Value] = []
        for child in node.children:
            if child.type == "command_name":
                child = child.named_children[0] if child.named_children else child
            elif child.type in ("variable_assignment", "file_redirect", "heredoc_redirect", "herestring_redirect"):
                continue
            if child.is_named:
                out.append(self.value(child))
        return out

    def _test_expr(self, node: Node, text: str) -> Truth:
        if self._depth > MAX_DEPTH:
            return Truth(None, False, text)
        self._depth += 1
        try:
            return self._test_node(node, text)
        finally:
            self._depth -= 1

    def _test_node(self, node: Node, text: str) -> Truth:
        kind = node.type
        if kind == "parenthesized_expression" and node.named_children:
            return self._test_expr(node.named_children[0], text)
        if kind == "unary_expression":
            op_node = node.child_by_field_name("operator")
            op = _text(op_node) if op_node is not None else (_text(node.children[0]) if node.children else "")
            operand = node.named_children[-1] if node.named_children else None
            if op == "!" and operand is not None:
                got = self._test_expr(operand, text)
                return Truth(None if got.value is None else not got.value, got.certain, text)
            return self._unary(op, self.value(operand) if operand is not None else Value(""), text)
        if kind == "binary_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            op_node = node.child_by_field_name("operator")
            op = _text(op_node) if op_node is not None else ""
            if left is None or right is None:
                return Truth(None, False, text)
            if op in ("&&", "||", "-a", "-o"):
                return _combine("&&" if op in ("&&", "-a") else "||", self._test_expr(left, text),
                                self._test_expr(right, text), text)
            return self._binary(self.value(left), op, self.value(right), text)
        return self._unary("-n", self.value(node), text)

    def _test_args(self, args: list[Value], text: str) -> Truth:
        if args and args[0].text == "!" and args[0].known:
            got = self._test_args(args[1:], text)
            return Truth(None if got.value is None else not got.value, got.certain, text)
        if len(args) == 1:
            return self._unary("-n", args[0], text)
        if len(args) == 2:
            return self._unary(args[0].text, args[1], text)
        if len(args) == 3:
            return self._binary(args[0], args[1].text, args[2], text)
        return Truth(None, False, text)

    def _unary(self, op: str, value: Value, text: str) -> Truth:
        if not value.known:
            return Truth(None, False, text)
        if op == "-n":
            return Truth(value.text != "", value.certain, text)
        if op == "-z":
            return Truth(value.text == "", value.certain, text)
        if op in _FILE_TESTS:  # what the image holds; the script may create it before
            return Truth(self.exists(value.text) if value.text.startswith("/") else None, False, text)
        return Truth(None, False, text)

    def _binary(self, left: Value, op: str, right: Value, text: str) -> Truth:
        if not (left.known and right.known):
            return Truth(None, False, text)
        certain = left.certain and right.certain
        if op in ("=", "=="):
            return Truth(fnmatch.fnmatchcase(left.text, right.text) if op == "==" else left.text == right.text,
                         certain, text)
        if op == "!=":
            return Truth(left.text != right.text, certain, text)
        if op in _NUMERIC:
            try:
                a, b = int(left.text or "0"), int(right.text or "0")
            except ValueError:
                return Truth(None, False, text)
            result = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[_NUMERIC[op]]
            return Truth(result, certain, text)
        return Truth(None, False, text)

    # -- words -------------------------------------------------------------------

    def fields(self, node: Node) -> list[str]:
        """The argv words one word node becomes (`"$@"` becomes the positional parameters)."""
        if node.type == "string" and len(node.named_children) == 1 and _is_all_args(node.named_children[0]):
            return list(self.s.args) if self.s.args is not None else [_text(node)]
        if _is_all_args(node):
            if self.s.args is None:
                return [_text(node)]
            return [w for a in self.s.args for w in (a.split() if node.type != "string" else [a])]
        got = self.value(node)
        if node.type in ("simple_expansion", "expansion") and got.known:
            return got.text.split()  # unquoted: split on white space
        return [got.text]

    def value(self, node: Node) -> Value:
        if self._depth > MAX_DEPTH:
            self._note(f"{self.where}:{node.start_point[0] + 1}: word nested more than {MAX_DEPTH} deep; "
                       "not worked out")
            return Value(_text(node)[:MAX_CONDITION], known=False, certain=False)
        self._depth += 1
        try:
            return self._value(node)
        finally:
            self._depth -= 1

    def _value(self, node: Node) -> Value:
        kind = node.type
        if kind in ("word", "number", "extglob_pattern", "regex", "test_operator"):
            return Value(_unescape(_text(node)))
        if kind == "raw_string":
            return Value(_text(node)[1:-1])
        if kind == "ansi_c_string":
            return Value(_text(node)[2:-1])
        if kind in ("string", "concatenation", "translated_string"):
            parts = [c for c in node.named_children]
            if kind == "string" and not parts:
                return Value("")
            if kind == "string":
                return self._join(node, parts, inside_quotes=True)
            return self._join(node, parts, inside_quotes=False)
        if kind == "string_content":
            return Value(_text(node))
        if kind == "simple_expansion":
            return self._variable(_text(node)[1:], node)
        if kind == "expansion":
            return self._expansion(node)
        return Value(_text(node), known=False, certain=False)

    def _join(self, node: Node, parts: list[Node], inside_quotes: bool) -> Value:
        # Keep the literal text between the named children (string quotes are not named).
        data = node.text or b""
        start = node.start_byte
        out, known, certain = [], True, True
        cursor = start + (1 if inside_quotes else 0)
        for part in parts:
            gap = data[cursor - start: part.start_byte - start]
            out.append(gap.decode("utf-8", "replace"))
            if _is_all_args(part):
                got = Value(" ".join(self.s.args)) if self.s.args is not None else Value(_text(part), False, False)
            else:
                got = self.value(part)
            out.append(got.text)
            known, certain = known and got.known, certain and got.certain
            cursor = part.end_byte
        end = node.end_byte - (1 if inside_quotes else 0)
        out.append(data[cursor - start: end - start].decode("utf-8", "replace"))
        return Value("".join(out), known, certain)

    def _variable(self, name: str, node: Node) -> Value:
        if name.isdigit():
            if name == "0":
                return Value(self.s.arg0)
            if self.s.args is None:
                return Value(_text(node), False, False)
            i = int(name) - 1
            return Value(self.s.args[i] if i < len(self.s.args) else "")
        if name == "#":
            return Value(str(len(self.s.args))) if self.s.args is not None else Value(_text(node), False, False)
        if name in ("?", "$", "!", "-", "_"):
            return Value(_text(node), False, False)
        if name in self.s.vars:
            value, certain = self.s.vars[name]
            return Value(value, True, certain) if value is not None else Value(_text(node), False, False)
        return Value("", True, False)  # unset in the environment: empty, unless a deployment sets it

    def _expansion(self, node: Node) -> Value:
        named = node.named_children
        if not named or named[0].type not in ("variable_name", "special_variable_name"):
            return Value(_text(node), False, False)
        name = _text(named[0])
        base = self._variable(name, node)
        if len(node.children) > 2 and node.children[1].type == "#":  # ${#X}: the length
            return Value(str(len(base.text)), base.known, base.certain) if base.known else base
        op_node = node.child_by_field_name("operator")
        if op_node is None:
            return base if len(named) == 1 else Value(_text(node), False, False)
        op = _text(op_node)
        rest = [c for c in named[1:]]
        word = self._join_values([self.value(c) for c in rest]) if rest else Value("")
        if not base.known:
            return Value(_text(node), False, False)
        unset = name not in self.s.vars
        empty = base.text == ""
        if op in (":-", ":="):
            use_default = empty
        elif op in ("-", "="):
            use_default = unset
        elif op in (":+", "+"):
            alt = not empty if op == ":+" else not unset
            return Value(word.text if alt else "", word.known, base.certain and word.certain)
        elif op in ("#", "##", "%", "%%") and word.known and len(base.text) <= MAX_TRIM:
            return Value(_trim(base.text, op, word.text), True, base.certain and word.certain)
        else:
            return Value(_text(node), False, False)
        if op in (":=", "=") and use_default:
            self.s.vars[name] = (word.text if word.known else None, False)
        chosen = word if use_default else base
        return Value(chosen.text, chosen.known, base.certain and chosen.certain)

    @staticmethod
    def _join_values(values: list[Value]) -> Value:
        return Value("".join(v.text for v in values), all(v.known for v in values), all(v.certain for v in values))


def _trim(text: str, op: str, pattern: str) -> str:
    """`${X#p}` / `${X##p}` (prefix) and `${X%p}` / `${X%%p}` (suffix), shortest or longest match."""
    spans = range(len(text) + 1)
    if op.startswith("#"):
        cuts = [i for i in spans if fnmatch.fnmatchcase(text[:i], pattern)]
        return text[(max(cuts) if op == "##" else min(cuts)):] if cuts else text
    cuts = [i for i in spans if fnmatch.fnmatchcase(text[i:], pattern)]
    return text[:(min(cuts) if op == "%%" else max(cuts))] if cuts else text


def _combine(op: str, a: Truth, b: Truth, text: str) -> Truth:
    if op == "&&":
        if a.value is False or b.value is False:
            lost = a if a.value is False else b
            return Truth(False, lost.certain, text)
        value = True if a.value and b.value else None
    else:
        if a.value is True or b.value is True:
            won = a if a.value is True else b
            return Truth(True, won.certain, text)
        value = False if a.value is False and b.value is False else None
    return Truth(value, a.certain and b.certain and value is not None, text)


MAX_CHAIN = 10_000


def _chain(node: Node) -> list[tuple[str, Node]]:
    """A left-nested `a && b || c` list as [("", a), ("&&", b), ("||", c)], without recursion."""
    out: list[tuple[str, Node]] = []
    while node.type == "list" and len(node.named_children) == 2 and len(out) < MAX_CHAIN:
        op = next((c.type for c in node.children if c.type in ("&&", "||")), "&&")
        out.append((op, node.named_children[1]))
        node = node.named_children[0]
    out.append(("", node))
    return out[::-1]


def _not(t: Truth) -> Truth:
    return Truth(None if t.value is None else not t.value, t.certain, f"not ({t.text})")


def _and(a: Truth, b: Truth) -> Truth:
    if a.value is True and a.certain or not a.text:
        return b
    if b.value is True and b.certain:
        return a
    return _combine("&&", a, b, f"{a.text} && {b.text}"[:MAX_CONDITION])


def _or(a: Truth, b: Truth) -> Truth:
    if a.value is False and a.certain:
        return b
    if b.value is False and b.certain:
        return a
    return _combine("||", a, b, f"{a.text} || {b.text}"[:MAX_CONDITION])


def _brief(node: Node) -> str:
    return " ".join(_text(node)[:4 * MAX_CONDITION].split())[:MAX_CONDITION]


def _is_test(node: Node) -> bool:
    if node.type == "list":
        return all(_is_test(item) for _, item in _chain(node) if item.type != "list")
    if node.type in ("test_command", "negated_command"):
        return True
    if node.type == "command":
        name = node.child_by_field_name("name")
        return name is not None and _text(name) in ("test", "[", "true", "false", ":")
    return False


def _is_all_args(node: Node) -> bool:
    if node.type == "simple_expansion":
        return _text(node) in ("$@", "$*")
    if node.type == "expansion":
        return _text(node) in ("${@}", "${*}")
    return False


_ESCAPE = re.compile(r"\\(.)")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def _text(node: Any) -> str:
    return (node.text or b"").decode("utf-8", "replace")
