"""The design's rules, checked: a pure domain, a schema file that matches the code and the contract."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema, build_schema, print_ast

from gateway.schema import build_schema as build_hookline_schema

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"
FORBIDDEN_IN_DOMAIN = {
    "starlette",
    "strawberry",
    "aiohttp",
    "arq",
    "redis",
    "uvicorn",
    "sqlite3",
    "psycopg",
    "psycopg2",
    "psycopg_pool",
    "gateway",
    "workers",
    "store",
    "hookline",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "domain").rglob("*.py")), ids=lambda p: p.name)
def test_the_domain_imports_no_web_queue_http_or_sql_library(path: Path) -> None:
    assert imported_modules(path) & FORBIDDEN_IN_DOMAIN == set()


@pytest.mark.parametrize(
    ("layer", "other"), [("gateway", "workers"), ("workers", "gateway"), ("gateway", "store")]
)
def test_gateway_and_workers_do_not_import_each_other(layer: str, other: str) -> None:
    for path in (ROOT / layer).rglob("*.py"):
        assert other not in imported_modules(path), path


@pytest.mark.parametrize("layer", ["bench", "harness"])
def test_benchmarks_and_the_harness_do_not_import_the_test_suite(layer: str) -> None:
    """What tests and benchmarks share lives in harness/, so that bench/ runs without tests/."""
    for path in (ROOT / layer).rglob("*.py"):
        assert "tests" not in imported_modules(path), path


def test_schema_graphql_is_generated_from_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == build_hookline_schema().as_str() + "\n", "run 'make schema'"


MAX_CONSOLE_MODULE_LINES = 400


def test_no_console_module_is_longer_than_400_lines() -> None:
    """Each of the console's modules (plain ES modules, no build step) can be read in one sitting."""
    modules = sorted((ROOT / "gateway" / "console").glob("*.js"))
    lines = {path.name: len(path.read_text().splitlines()) for path in modules}
    assert modules
    assert {name: n for name, n in lines.items() if n > MAX_CONSOLE_MODULE_LINES} == {}


def contract_schema() -> GraphQLSchema:
    text = CONTRACT.read_text()
    sdl = "\n".join(re.findall(r"```graphql\n(.*?)```", text, flags=re.S))
    return build_schema(sdl)


def _default(value: Any) -> str | None:
    """The default an argument or input field states in SDL, as printed there."""
    node = getattr(value, "ast_node", None)
    default = getattr(node, "default_value", None)
    return print_ast(default) if default is not None else None


def test_every_contract_name_we_serve_has_the_contract_type() -> None:
    """What is built matches the contract exactly; what is not built yet is simply absent."""
    ours = build_schema(build_hookline_schema().as_str())
    contract = contract_schema()
    compared = 0
    for name, contract_type in contract.type_map.items():
        our_type = ours.type_map.get(name)
        if name.startswith("__") or our_type is None:
            continue
        assert type(our_type) is type(contract_type), name
        if not hasattr(contract_type, "fields"):
            continue
        our_fields = getattr(our_type, "fields")  # noqa: B009 - object and input types alike
        for field_name, field in contract_type.fields.items():
            if field_name not in our_fields:
                continue
            ours_field = our_fields[field_name]
            where = f"{name}.{field_name}"
            assert str(ours_field.type) == str(field.type), where
            if _default(field) is not None:
                assert _default(ours_field) == _default(field), f"{where} default"
            for arg_name, arg in getattr(field, "args", {}).items():
                assert arg_name in ours_field.args, f"{where}({arg_name})"
                assert str(ours_field.args[arg_name].type) == str(arg.type), f"{where}({arg_name})"
                if _default(arg) is not None:
                    assert _default(ours_field.args[arg_name]) == _default(arg), f"{where}({arg_name})"
            compared += 1
    assert compared > 50


RESOLVER_DECORATORS = {"field", "mutation", "subscription"}
MAX_RESOLVER_LINES = 15
# How a resolver reaches the application: as the caller, in the thread pool (gateway/context.py).
APPLICATION_CALLS = {"run", "run_with_caller", "publish"}


def resolvers(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The functions decorated `strawberry.field`, `strawberry.mutation` or `strawberry.subscription`."""

    def is_resolver_decorator(node: ast.expr) -> bool:
        target = node.func if isinstance(node, ast.Call) else node
        return (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "strawberry"
            and target.attr in RESOLVER_DECORATORS
        )

    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(is_resolver_decorator(d) for d in node.decorator_list)
    ]


GATEWAY_MODULES = sorted((ROOT / "gateway").rglob("*.py"))


@pytest.mark.parametrize("path", GATEWAY_MODULES, ids=lambda p: p.name)
def test_no_resolver_body_is_longer_than_15_lines(path: Path) -> None:
    long = {
        r.name: lines
        for r in resolvers(path)
        if (lines := (r.end_lineno or r.lineno) - r.body[0].lineno + 1) > MAX_RESOLVER_LINES
    }
    assert long == {}, "parse, authorise, call one application method, map: the rest is the domain's"


@pytest.mark.parametrize("path", GATEWAY_MODULES, ids=lambda p: p.name)
def test_resolvers_call_the_application_once_and_only_through_the_context(path: Path) -> None:
    for resolver in resolvers(path):
        names = {n.attr for n in ast.walk(resolver) if isinstance(n, ast.Attribute)}
        assert names.isdisjoint({"app", "to_thread"}), resolver.name
        calls = [
            n
            for n in ast.walk(resolver)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in APPLICATION_CALLS
        ]
        assert len(calls) <= 1, resolver.name


def test_the_gateway_has_resolvers_to_check() -> None:
    assert sum(len(resolvers(path)) for path in GATEWAY_MODULES) > 20


MUTABLE_DISPLAYS = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
MUTABLE_MAKERS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter", "bytearray"}
MODULE_CACHES = {"lru_cache", "cache"}


def module_level_state(path: Path) -> list[str]:
    """What a module keeps at module level that can change: a mutable container assigned there (a
    constant is a tuple, frozenset or MappingProxyType), a cache on a module's function, a `global`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        made = value.func if isinstance(value, ast.Call) else None
        maker = getattr(made, "id", getattr(made, "attr", None))
        if isinstance(value, MUTABLE_DISPLAYS) or maker in MUTABLE_MAKERS:
            found.append(f"line {node.lineno}: {ast.unparse(node).splitlines()[0]}")
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if getattr(called, "id", getattr(called, "attr", None)) in MODULE_CACHES:
                    found.append(f"line {node.lineno}: a cache on {node.name}")
    found += [
        f"line {n.lineno}: global {', '.join(n.names)}" for n in ast.walk(tree) if isinstance(n, ast.Global)
    ]
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "domain").rglob("*.py")), ids=lambda p: p.name)
def test_the_domain_keeps_no_mutable_state_at_module_level(path: Path) -> None:
    """Two requests, or two tests, never meet through the domain: what it caches or counts lives in an
    object that the composition root made (a cache of webhooks is the read model's)."""
    assert module_level_state(path) == []


MAX_MODULE_LINES = 400
PYTHON_LAYERS = ("domain", "gateway", "store", "workers", "hookline", "bench", "harness")
# Data, not code: the built-in event types and their sample payloads, read as a table.
LONG_TABLES = {"domain/catalogue.py"}


def test_no_python_module_is_longer_than_400_lines() -> None:
    """A module is read in one sitting; one that grows past this has two jobs."""
    lines = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for layer in PYTHON_LAYERS
        for path in (ROOT / layer).rglob("*.py")
    }
    assert {name: n for name, n in lines.items() if n > MAX_MODULE_LINES and name not in LONG_TABLES} == {}
