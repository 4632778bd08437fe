"""The design's rules, checked: a pure domain, a schema file that matches the code and the contract,
modules of a readable size, thin resolvers, and a README whose settings table is the settings class."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema, build_schema, print_ast
from pydantic.fields import FieldInfo

from gateway.schema import build_schema as build_hookline_schema
from hookline.settings import Settings

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


# Fields whose SDL a later section of the contract changes in prose, with the words that change it.
AMENDED = {"AuditRecord.data": ("JSON", "`AuditRecord.data` becomes nullable (`JSON`)")}  # "Audit chain v2"


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
            expected, amendment = AMENDED.get(where, (str(field.type), None))
            if amendment is not None:
                assert amendment in CONTRACT.read_text(), f"{where}: no longer {amendment!r}"
            assert str(ours_field.type) == expected, where
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


# README's configuration table equals the settings class: a setting users cannot find is no setting.

README = ROOT / "README.md"
VARIABLE = re.compile(r"HOOKLINE_[A-Z0-9_]+")


def env_name(name: str, field: FieldInfo) -> str:
    """The variable pydantic-settings reads for a field (an alias replaces the prefix)."""
    alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
    return (alias or Settings.model_config.get("env_prefix", "") + name).upper()


SETTINGS = {env_name(name, field): (name, field) for name, field in Settings.model_fields.items()}


def stated_default(default: object) -> str | None:
    """The default as README writes it; None when it is not a plain value (only the row is required)."""
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, int | str):
        return str(default)
    return None


def configuration_rows() -> dict[str, str]:
    """Each variable of README's configuration table with its default cell (`A` / `B` rows split in two)."""
    section = re.search(r"^## Configuration\n(.*?)(?=^## )", README.read_text(), flags=re.M | re.S)
    assert section, "README.md has no '## Configuration' section: the settings table lives there"
    rows: dict[str, str] = {}
    for line in section.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = VARIABLE.findall(cells[0]) if line.startswith("|") else []
        if not names:
            continue
        defaults = cells[1].split(" / ") if len(names) > 1 else cells[1:2]
        assert len(defaults) == len(names), f"row {line!r}: give one default per variable, `a` / `b`"
        rows.update(zip(names, defaults, strict=True))
    assert rows, "README.md's '## Configuration' section has no table of HOOKLINE_* rows"
    return rows


def suggested_row(variable: str, default: str | None) -> str:
    cell = "unset" if default == "unset" else f"`{default}`" if default is not None else "…"
    return f"| `{variable}` | {cell} | <what it does, and when to change it> |"


@pytest.mark.parametrize("variable", sorted(SETTINGS))
def test_every_setting_has_a_row_in_readmes_configuration_table_with_its_default(variable: str) -> None:
    name, field = SETTINGS[variable]
    expected = stated_default(field.default)
    row = suggested_row(variable, expected)
    rows = configuration_rows()
    assert variable in rows, (
        f"README.md's configuration table has no row for {variable} "
        f"(Settings.{name} in hookline/settings.py): add\n{row}"
    )
    if expected is None:
        return
    cell = rows[variable]
    if expected == "unset":
        assert cell.startswith("unset"), (
            f"{variable} is unset by default; README.md's default cell is {cell!r}: start it 'unset'\n{row}"
        )
    else:
        stated = re.match(r"`([^`]*)`", cell)
        assert (stated.group(1) if stated else cell) == expected, (
            f"README.md gives {variable}'s default as {cell!r}, settings.py as {expected}: write\n{row}"
        )


def test_readmes_configuration_table_names_no_variable_the_settings_class_lacks() -> None:
    unknown = sorted(set(configuration_rows()) - set(SETTINGS))
    assert not unknown, (
        f"README.md's configuration table names {', '.join(unknown)}, which hookline/settings.py does not "
        "read: remove the row, or add the field to Settings"
    )


def test_every_hookline_variable_readme_mentions_is_one_the_settings_class_reads() -> None:
    unknown = sorted(set(VARIABLE.findall(README.read_text())) - set(SETTINGS))
    assert not unknown, f"README.md mentions {', '.join(unknown)}, which hookline/settings.py does not read"
