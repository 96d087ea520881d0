"""README.md stays true to the code it documents."""

from __future__ import annotations

from pathlib import Path

from feedback_asgi.core.config import ENV_PREFIX, FeedbackConfig

README = (Path(__file__).parents[2] / "README.md").read_text("utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block
    assert "make test" in first_block


def test_configuration_table_lists_every_setting_and_no_other() -> None:
    table = README.split("<!-- config-table:start -->", 1)[1].split("<!-- config-table:end -->")[0]
    documented = {
        line.split("|")[2].strip().strip("`")
        for line in table.splitlines()
        if line.startswith("| `")
    }
    expected = {f"{ENV_PREFIX}{name.upper()}" for name in FeedbackConfig.model_fields}
    assert documented == expected
