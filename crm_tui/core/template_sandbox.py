"""The Jinja2 sandbox mail, rule and report templates run in, with limits it enforces itself (no helper
process): a ``range`` holds at most ``MAX_RANGE`` items; no text (the output, a string built by ``*``, ``+``,
``~``, ``%``, a filter, a method or a macro) is longer than ``MAX_TEXT`` characters, and a render builds at most
``MAX_BUILT`` characters in all; a render ends after ``MAX_SECONDS`` (a monotonic deadline checked at every loop
step, call, filter and operator: a resource limit, not business time). ``{% include %}``, ``{% import %}`` and
``{% extends %}`` are refused when the template is compiled: a mail template stands alone.

What breaks a limit raises ``LimitExceeded`` with words for the user ("takes more than 2 seconds to fill");
``email_templates.render`` turns it into a template error naming the template."""

from __future__ import annotations

import functools
import operator as op
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg, generate_lorem_ipsum

MAX_RANGE = 10_000
MAX_TEXT = 1024 * 1024  # characters of one text, the output included ("1 MiB")
MAX_BUILT = 64 * MAX_TEXT  # characters built by one render in all (the texts a loop makes and drops)
MAX_SECONDS = 2.0
MAX_INT_BITS = 4096  # a number in a mail has no business being longer


class LimitExceeded(Exception):  # noqa: N818 - a template's fault, said in words
    """A template went past a limit; the message says which, in words ("takes more than 2 seconds to fill")."""


class TooSlow(LimitExceeded):
    """The render passed its deadline."""


@dataclass
class _Budget:
    deadline: float
    built: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def limited(seconds: float | None = None) -> Iterator[None]:
    """The limits of one render: its deadline starts now (templates compiled and filled inside)."""
    token = _budget.set(_Budget(time.monotonic() + (MAX_SECONDS if seconds is None else seconds)))
    try:
        yield
    finally:
        _budget.reset(token)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise TooSlow(f"takes more than {MAX_SECONDS:g} seconds to fill (a loop too long?)")


def _too_long(size: int) -> LimitExceeded:
    return LimitExceeded(f"would make a text of {size:,} characters (at most {MAX_TEXT:,}: 1 MiB)")


def _size(value: Any) -> int:
    if isinstance(value, (str, bytes, bytearray, list, tuple, dict, set, frozenset)):
        return len(value)
    return 0


_Built = TypeVar("_Built")


def _built(value: _Built) -> _Built:
    """Count a text (or a list) just made against the limits."""
    size = _size(value)
    if size > MAX_TEXT:
        raise _too_long(size)
    budget = _budget.get()
    if budget is not None and size:
        budget.built += size
        if budget.built > MAX_BUILT:
            raise LimitExceeded(f"builds more than {MAX_BUILT // MAX_TEXT} MiB of text in all")
    return value


def _check_size(size: int) -> None:
    if size > MAX_TEXT:
        raise _too_long(size)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def limited_range(*args: Any) -> range:
    """``range`` of at most MAX_RANGE numbers."""
    numbers = range(*args)
    try:
        count: int | None = len(numbers)
    except OverflowError:
        count = None
    if count is None or count > MAX_RANGE:
        shown = f"{count:,} numbers" if count is not None and count <= 10**15 else "too many numbers"
        raise LimitExceeded(f"asks for a range of {shown} (at most {MAX_RANGE:,})")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 - Jinja's names
    if n > 50 or max > 1000 or min > max:
        raise LimitExceeded("asks for too much lorem ipsum (at most 50 paragraphs of 1,000 words)")
    return generate_lorem_ipsum(n, html, min, max)


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(text: Any, args: Any) -> None:
    """``text % args``: no width or precision beyond MAX_TEXT, written or taken from the arguments (``*``)."""
    if not isinstance(text, (str, bytes)):
        return
    source = text if isinstance(text, str) else text.decode("latin-1")
    starred = False
    for width, precision in _PERCENT.findall(source):
        for number in (width, precision):
            if number == "*":
                starred = True
            elif number and int(number) > MAX_TEXT:
                raise _too_long(int(number))
    if starred:
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            if (_int(value) or 0) > MAX_TEXT:
                raise _too_long(value)


def _check_format(text: str) -> None:
    """``text.format(...)``: no width beyond MAX_TEXT, and none taken from the arguments."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # format() says what is wrong
    for _, _, spec, _ in fields:
        if not spec:
            continue
        if "{" in spec:
            raise LimitExceeded("takes a format width from its values, which templates cannot")
        for number in re.findall(r"\d+", spec):
            if int(number) > MAX_TEXT:
                raise _too_long(int(number))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            count = _int(times)
            if count is not None and _size(sequence) and count > 0:
                _check_size(_size(sequence) * count)
        a, b = _int(left), _int(right)
        if a is not None and b is not None and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise LimitExceeded("multiplies numbers too large for a mail")
    elif operator == "+":
        if _size(left) and _size(right):
            _check_size(_size(left) + _size(right))
    elif operator == "**":
        base, exponent = _int(left), _int(right)
        if (
            base is not None
            and exponent is not None
            and abs(base) > 1
            and exponent * base.bit_length() > MAX_INT_BITS
        ):
            raise LimitExceeded("raises a number to a power too large for a mail")
    elif operator == "%":
        _check_percent(left, right)


def _padding(text: Any, width: Any = 0, *_fill: Any) -> None:
    if (_int(width) or 0) > MAX_TEXT:
        raise _too_long(width)


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(text, (str, bytes)) and isinstance(old, type(text)) and isinstance(new, type(text))):
        return
    found = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]  # old has text's type (checked above)
    limit = _int(count)
    if limit is not None and limit >= 0:
        found = min(found, limit)
    _check_size(len(text) + found * (len(new) - len(old)))


def _check_join(separator: Any, items: list[Any]) -> None:
    if not items:
        return
    size = sum(_size(item) if isinstance(item, (str, bytes)) else 20 for item in items)
    _check_size(size + _size(separator) * (len(items) - 1))


# Methods of str and bytes that can make a long text from a short one (checked before they run).
_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": _padding,
    "ljust": _padding,
    "rjust": _padding,
    "zfill": _padding,
    "expandtabs": lambda text, size=8: _check_size(len(text) + text.count("\t") * max(_int(size) or 0, 0)),
    "replace": _check_replace,
}


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, (str, bytes)):
        if name == "join" and args:
            items = _materialize(args[0])
            _check_join(owner, items)
            return (items, *args[1:])
        check = _METHOD_CHECKS.get(name)
        if check is not None:
            check(owner, *args, **kwargs)
    elif isinstance(owner, (list, dict, set, bytearray)):
        if name in ("extend", "update", "__iadd__") and args:
            grown = len(owner) + (_size(args[0]) or 0)
            if grown > MAX_TEXT:
                raise LimitExceeded(f"grows a list to {grown:,} items (at most {MAX_TEXT:,})")
        elif len(owner) >= MAX_TEXT:
            raise LimitExceeded(f"grows a list past {MAX_TEXT:,} items")
    return args


# --- filters -------------------------------------------------------------------------------------------------


def _materialize(value: Any) -> list[Any]:
    items = []
    for item in value:
        _tick()
        items.append(item)
        if len(items) > MAX_TEXT:
            raise LimitExceeded(f"makes a list of more than {MAX_TEXT:,} items")
    return items


def _pre_indent(args: list[Any], kwargs: dict[str, Any]) -> None:
    text = str(args[0]) if args else ""
    width = args[1] if len(args) > 1 else kwargs.get("width", 4)
    per_line = len(width) if isinstance(width, str) else (_int(width) or 0)
    _check_size(len(text) + (text.count("\n") + 1) * max(per_line, 0))


def _pre_wordwrap(args: list[Any], kwargs: dict[str, Any]) -> None:
    text = str(args[0]) if args else ""
    width = _int(args[1] if len(args) > 1 else kwargs.get("width", 79)) or 1
    wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring")
    lines = len(text) // max(width, 1) + text.count("\n") + 1
    _check_size(len(text) + lines * len(str(wrap or "\n")))


def _pre_count(position: int, key: str) -> Callable[[list[Any], dict[str, Any]], None]:
    def check(args: list[Any], kwargs: dict[str, Any]) -> None:
        count = _int(args[position] if len(args) > position else kwargs.get(key))
        if (count or 0) > MAX_TEXT:
            raise LimitExceeded(f"asks for {count:,} rows (at most {MAX_TEXT:,})")

    return check


def _pre_replace(args: list[Any], kwargs: dict[str, Any]) -> None:
    if len(args) >= 3:
        count = args[3] if len(args) > 3 else kwargs.get("count")
        _check_replace(str(args[0]), args[1], args[2], -1 if count is None else count)


def _pre_join(args: list[Any], kwargs: dict[str, Any]) -> None:
    if args:
        args[0] = _materialize(args[0])
        separator = args[1] if len(args) > 1 else kwargs.get("d", "")
        _check_join(separator, args[0] if not kwargs.get("attribute") else [0] * len(args[0]))


def _pre_sum(args: list[Any], kwargs: dict[str, Any]) -> None:
    if args:
        args[0] = _materialize(args[0])
        if any(_size(item) for item in args[0]):
            _check_size(sum(_size(item) for item in args[0]))


_FILTER_CHECKS: dict[str, Callable[[list[Any], dict[str, Any]], None]] = {
    "center": lambda args, kwargs: _padding(None, args[1] if len(args) > 1 else kwargs.get("width", 80)),
    "indent": _pre_indent,
    "wordwrap": _pre_wordwrap,
    "format": lambda args, kwargs: _check_percent(args[0] if args else "", kwargs or tuple(args[1:])),
    "replace": lambda args, kwargs: _pre_replace(args, kwargs),
    "join": _pre_join,
    "sum": _pre_sum,
    "batch": _pre_count(1, "linecount"),
    "slice": _pre_count(1, "slices"),
}


def _limited_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passes = _PassArg.from_obj(function) is not None  # its first argument is Jinja's (context, environment)
    check = _FILTER_CHECKS.get(name)

    @functools.wraps(function)
    def limited_filter(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if check is not None:
            head, rest = (list(args[:1]), list(args[1:])) if passes else ([], list(args))
            check(rest, kwargs)
            args = (*head, *rest)
        return _built(function(*args, **kwargs))

    return limited_filter


# --- the environment -----------------------------------------------------------------------------------------


class NotAllowed(Exception):  # noqa: N818 - a template's fault, said in words
    """A template uses what mail templates cannot (``{% include %}``...); found when it is compiled."""


_STANDALONE = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
}


def _refuse_other_templates(tree: nodes.Template) -> None:
    for kind, words in _STANDALONE.items():
        for node in tree.find_all(kind):
            raise NotAllowed(f"uses {words} (line {node.lineno}): a template here stands alone")


class _LimitedCodeGenerator(CodeGenerator):
    """``~`` goes through the environment's limited join (Jinja joins it itself otherwise); after each
    comparison the deadline is checked (comparing two long lists takes a while)."""

    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("environment.ticked(")
        super().visit_Compare(node, frame)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.limited_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class LimitedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox with the limits above."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})
    code_generator_class = _LimitedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = limited_range
        self.globals["lipsum"] = _lipsum
        self.filters = {name: _limited_filter(name, function) for name, function in self.filters.items()}

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """What a template, a macro or a ``{% set %}`` block writes, stopped once past MAX_TEXT."""
        kept: list[str] = []
        size = 0
        for part in parts:
            size += len(part)
            if size > MAX_TEXT:
                raise LimitExceeded(f"fills to more than {MAX_TEXT:,} characters (1 MiB)")
            kept.append(part)
        return _built("".join(kept))

    def limited_join(self, parts: tuple[Any, ...]) -> str:
        _tick()
        texts = [str(part) for part in parts]
        _check_size(sum(map(len, texts)))
        return _built("".join(texts))

    @staticmethod
    def ticked(value: Any) -> Any:
        _tick()
        return value

    def limited_iter(self, iterable: Any) -> Iterator[Any]:
        """A loop's items, the deadline checked at each step."""
        for item in iterable:
            _tick()
            yield item

    def _generate(self, source: nodes.Template, name: Any, filename: Any, defer_init: bool = False) -> str:
        _refuse_other_templates(source)
        for loop in source.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.EnvironmentAttribute("limited_iter"), [loop.iter], [], None, None, lineno=loop.lineno
            )
        return super()._generate(source, name, filename, defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return _built(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        _tick()
        args = _check_method(__obj, args, kwargs)
        return _built(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            _check_format(value.__self__)
        return wrapper


# --- what the template check can see before a template runs --------------------------------------------------

# What a template that is quick to fill is made of: text, field lookups, {% if %}, {% set %}, comparisons and
# operators on single values (held to the size limits). No loop, call, filter, macro or list: each part runs
# once, on a value no larger than a field or 1 MiB, so it is filled in about the time it takes to read it.
_QUICK = frozenset(
    {
        nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.If,
        nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.CondExpr, nodes.Concat,
        nodes.Assign, nodes.With, nodes.Neg, nodes.Pos, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div,
        nodes.FloorDiv, nodes.Mod, nodes.Pow,
    }
)  # fmt: skip


def may_run_long(tree: nodes.Template) -> bool:
    """Whether a parsed template has anything but the quick parts above (a loop, a call, a filter...)."""
    return any(type(node) not in _QUICK for node in tree.find_all(nodes.Node))


_OPERATORS = {nodes.Mul: "*", nodes.Pow: "**", nodes.Add: "+", nodes.Mod: "%"}


def _const(node: nodes.Node) -> Any:
    """The value of an expression of written values (``'a' * 10**9``), each operator checked before it is
    worked out; raises ``nodes.Impossible`` for anything else."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.Neg, nodes.Pos)) and _int(_const(node.node)) is not None:
        value = _const(node.node)
        return -value if isinstance(node, nodes.Neg) else value
    if isinstance(node, nodes.BinExpr) and type(node) in _OPERATORS:
        left, right = _const(node.left), _const(node.right)
        symbol = _OPERATORS[type(node)]
        _check_binop(symbol, left, right)
        work = {"*": op.mul, "**": op.pow, "+": op.add, "%": op.mod}[symbol]
        try:
            return work(left, right)
        except Exception as exc:  # noqa: BLE001 - it fails when it runs, saying why
            raise nodes.Impossible() from exc
    raise nodes.Impossible()


def _constant_range(node: nodes.Node) -> int | None:
    """How many numbers ``range(...)`` with written numbers holds (None: not such a range)."""
    if not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range"):
        return None
    if node.kwargs or node.dyn_args or node.dyn_kwargs:
        return None
    try:
        values = [_const(arg) for arg in node.args]
    except (nodes.Impossible, LimitExceeded):
        return None
    if not all(_int(v) is not None for v in values):
        return None
    try:
        return len(range(*values))
    except (TypeError, ValueError):
        return None
    except OverflowError:
        return MAX_RANGE + 1


def hidden_name(tree: nodes.Template) -> tuple[int, str] | None:
    """The first attribute or key starting with ``_`` a parsed template reads (``''.__class__``,
    ``x['_secret']``) and its line: the sandbox refuses every one of them when it is filled."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name: Any = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        else:
            name = None
        if isinstance(name, str) and name.startswith("_"):
            return node.lineno, name
    return None


def static_problems(tree: nodes.Template) -> list[str]:
    """What a parsed template would surely break, in words (the template check says it on save)."""
    problems: list[str] = []
    for kind, words in _STANDALONE.items():
        problems += [
            f"line {n.lineno}: uses {words}; a template here stands alone" for n in tree.find_all(kind)
        ]
    hidden = hidden_name(tree)
    if hidden is not None:
        problems.append(f"line {hidden[0]}: uses something templates may not: {hidden[1]}")
    for call in tree.find_all(nodes.Call):
        count = _constant_range(call)
        if count is not None and count > MAX_RANGE:
            problems.append(f"line {call.lineno}: a range holds at most {MAX_RANGE:,} numbers")
    for binop in tree.find_all(tuple(_OPERATORS)):
        try:
            _const(binop)
        except LimitExceeded as exc:
            problems.append(f"line {binop.lineno}: the template {exc}")
        except nodes.Impossible:
            continue

    def walk(node: nodes.Node, outer: int) -> None:
        for child in node.iter_child_nodes():
            if not isinstance(child, nodes.For):
                walk(child, outer)
                continue
            count = _constant_range(child.iter)
            total = outer * (count if count is not None else 1)
            if count is not None and outer > 1 and total > 10 * MAX_RANGE:
                problems.append(
                    f"line {child.lineno}: nested loops of {total:,} steps would not finish in time"
                )
                continue
            walk(child, total)

    walk(tree, 1)
    return list(dict.fromkeys(problems))
