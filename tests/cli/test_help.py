"""Every command's --help: defaults shown where they say something."""

import pytest

from tinycnn.cli import COMMANDS, main


@pytest.mark.parametrize("command", [name for name, _ in COMMANDS])
def test_help_shows_real_defaults_once(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text


def test_help_that_names_its_default_gets_no_second_one(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "(default: era-s7; with --confirm, the search's) --space" in " ".join(capsys.readouterr().out.split())


def test_help_still_shows_a_plain_default(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "trials at a time (default: 1)" in " ".join(capsys.readouterr().out.split())
