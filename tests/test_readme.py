"""README's configuration table equals the settings class: a setting users cannot find is no setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from hookline.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
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
