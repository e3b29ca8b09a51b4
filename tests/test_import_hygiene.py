"""Import hygiene of crm_tui, read from the source (ast), not from what happens to be loaded:

- no import cycles among crm_tui modules, counting imports at the top and inside functions alike (only
  ``if TYPE_CHECKING:`` imports, which never run, are left out): an import inside a function does not break a
  cycle, it hides it;
- no module imports another module's private (``_name``) names;
- an import inside a function is there to keep start-up fast and says so: a comment on its line or on the line
  above (one comment above a block of imports covers the block).

Each test lists every offender (module and line) so that one run shows all there is to fix.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "crm_tui"


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: list[str]
    comment_lines: set[int] = field(default_factory=set)  # lines with a comment (after code or alone)
    comment_only_lines: set[int] = field(default_factory=set)  # lines that hold nothing but a comment

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def _module(name: str, path: Path, source: str) -> Module:
    module = Module(name, path, ast.parse(source, str(path)), source.splitlines())
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            line = token.start[0]
            module.comment_lines.add(line)
            if not module.lines[line - 1][: token.start[1]].strip():
                module.comment_only_lines.add(line)
    return module


def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.relative_to(PACKAGE).parts[:-1] and path.parent.name == "versions":
            continue  # Alembic's revision files: run by Alembic, not imported by crm_tui
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = _module(name, path, path.read_text("utf-8"))
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@dataclass(frozen=True)
class ImportAt:
    node: ast.Import | ast.ImportFrom
    in_function: bool
    siblings: tuple[ast.stmt, ...]  # the statements of the body it sits in


def _imports(module: Module) -> Iterator[ImportAt]:
    """Every import statement that can run (TYPE_CHECKING blocks left out), and whether it is inside a def."""

    def walk(body: list[ast.stmt], in_function: bool) -> Iterator[ImportAt]:
        for statement in body:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                yield ImportAt(statement, in_function, tuple(body))
            elif isinstance(statement, ast.If) and _is_type_checking(statement.test):
                yield from walk(statement.orelse, in_function)
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(statement.body, True)
            else:
                for name in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(statement, name, None)
                    if isinstance(inner, list):
                        yield from walk([s for s in inner if isinstance(s, ast.stmt)], in_function)
                        for handler in inner:
                            if isinstance(handler, ast.ExceptHandler):
                                yield from walk(handler.body, in_function)
                if isinstance(statement, ast.Match):
                    for case in statement.cases:
                        yield from walk(case.body, in_function)

    yield from walk(module.tree.body, False)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: Module, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(crm_tui module imported, the name taken from it or None) for each name of the statement."""
    found: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith("crm_tui"):
                found.append((alias.name, None))
        return found
    source = _absolute(module, node)
    if not source.startswith("crm_tui"):
        return found
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        found.append((submodule, None) if submodule in MODULES else (source, alias.name))
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, module in MODULES.items():
        for found in _imports(module):
            for target, _ in _targets(module, found.node):
                if target in MODULES and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return [_one_cycle(graph, component) for component in sorted(components)]


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (what to read to see the cycle)."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component


def _where(module: Module, node: ast.stmt | ast.expr) -> str:
    return f"{module.path.relative_to(ROOT)}:{node.lineno}"


def import_cycles() -> list[str]:
    return [" -> ".join(cycle) for cycle in _cycles(import_graph())]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports() -> list[str]:
    """Places where a module takes another module's ``_name``: ``from x import _name`` (a private module too),
    or ``x._name`` on a crm_tui module imported as ``x``."""
    offenders = []
    for name, module in MODULES.items():
        aliases: dict[str, str] = {}  # local name -> the crm_tui module bound to it
        for found in _imports(module):
            node = found.node
            for alias in node.names:
                if isinstance(node, ast.Import):
                    if alias.name.startswith("crm_tui") and alias.asname:
                        aliases[alias.asname] = alias.name
                    continue
                source = _absolute(module, node)
                if not source.startswith("crm_tui") or source == name:
                    continue
                if _private(alias.name):
                    offenders.append(f"{_where(module, node)}: {source}.{alias.name}")
                elif f"{source}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
        for walked in ast.walk(module.tree):
            if (
                isinstance(walked, ast.Attribute)
                and isinstance(walked.value, ast.Name)
                and walked.value.id in aliases
                and _private(walked.attr)
                and aliases[walked.value.id] != name
            ):
                offenders.append(f"{_where(module, walked)}: {aliases[walked.value.id]}.{walked.attr}")
    return sorted(set(offenders))


def uncommented_function_imports() -> list[str]:
    """Imports inside functions with no comment on their line, on the line above, or above their block."""
    offenders = []
    for module in MODULES.values():
        for found in _imports(module):
            if not found.in_function:
                continue
            node = found.node
            if node.lineno in module.comment_lines or node.lineno - 1 in module.comment_only_lines:
                continue
            position = next(i for i, s in enumerate(found.siblings) if s is node)
            head: ast.stmt = node
            while position > 0 and isinstance(found.siblings[position - 1], ast.Import | ast.ImportFrom):
                position -= 1
                head = found.siblings[position]
            if head is not node and (
                head.lineno in module.comment_lines or head.lineno - 1 in module.comment_only_lines
            ):
                continue
            names = ", ".join(alias.name for alias in node.names)
            what = (
                f"from {'.' * node.level}{node.module or ''} import {names}"
                if isinstance(node, ast.ImportFrom)
                else f"import {names}"
            )
            offenders.append(f"{_where(module, node)}: {what}")
    return sorted(offenders)


def _report(title: str, offenders: list[str]) -> str:
    return f"{len(offenders)} {title}:\n" + "\n".join(offenders)


def _judge(title: str, offenders: list[str]) -> None:
    assert not offenders, _report(title, offenders)


def test_the_graph_sees_the_imports_inside_functions() -> None:
    """The graph is what the tests below stand on: it must see a function's import and skip TYPE_CHECKING's."""
    graph = import_graph()
    assert "crm_tui.core.services.contacts" in graph["crm_tui.cli.records"]  # imported in a handler
    assert "crm_tui.runtime.context" not in graph["crm_tui.cli.records"]  # only under TYPE_CHECKING
    assert "crm_tui.cli.records" in graph["crm_tui.cli.main"]


def test_each_check_finds_an_offender(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks below are strict: two modules made up for this test, importing each other inside functions
    (one without a comment) and taking a private name, are each reported."""
    first = _module(
        "crm_tui.made_up_first",
        PACKAGE / "made_up_first.py",
        "def f():\n    from crm_tui.made_up_second import _hidden\n",
    )
    second = _module(
        "crm_tui.made_up_second",
        PACKAGE / "made_up_second.py",
        "_hidden = 1\n\n\ndef g():\n    # here, not at the top: start-up\n    import crm_tui.made_up_first\n",
    )
    monkeypatch.setitem(MODULES, first.name, first)
    monkeypatch.setitem(MODULES, second.name, second)
    assert "crm_tui.made_up_first -> crm_tui.made_up_second -> crm_tui.made_up_first" in import_cycles()
    assert "crm_tui/made_up_first.py:2: crm_tui.made_up_second._hidden" in private_imports()
    uncommented = uncommented_function_imports()
    assert "crm_tui/made_up_first.py:2: from crm_tui.made_up_second import _hidden" in uncommented
    assert not [offender for offender in uncommented if offender.startswith("crm_tui/made_up_second.py")]


def test_no_import_cycles() -> None:
    _judge("import cycles among crm_tui modules (one path through each)", import_cycles())


def test_no_module_imports_another_modules_private_names() -> None:
    _judge("imports of another module's private names", private_imports())


def test_every_import_inside_a_function_says_why() -> None:
    _judge("imports inside functions without a comment", uncommented_function_imports())


if __name__ == "__main__":  # every offender, as the tests see them: python tests/test_import_hygiene.py
    print(_report("import cycles", import_cycles()), end="\n\n")
    print(_report("imports of another module's private names", private_imports()), end="\n\n")
    print(_report("imports inside functions without a comment", uncommented_function_imports()))
