"""What the README and the shipped examples tell users to type exists and parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer
import yaml

from medsilo.cli import app
from medsilo.data.heart_disease import HOSPITALS
from medsilo.data.spec import DATASET_NAMES, SITE_HELD_DATASETS

ROOT = Path(__file__).resolve().parents[1]
#: A command line: ``.venv/bin/medsilo ...`` (README.md's code blocks) or an indented
#: ``medsilo ...`` (the kits' README.txt); prose that starts with "medsilo" is neither.
COMMAND_LINE = re.compile(r"^(?:\.venv/bin/|\s+)(medsilo\s.*)$")


def medsilo_lines(text: str) -> list[str]:
    """Every command line of ``text`` that runs ``medsilo`` (comments after ``#`` dropped)."""
    found = (COMMAND_LINE.match(line) for line in text.splitlines())
    return [m.group(1).split(" #")[0].strip() for m in found if m is not None]


def parse_command_line(line: str) -> list[str]:
    """Parse ``line`` with the real CLI, as a user's shell would pass it, without running
    anything; return the subcommand path. A wrong command or option raises a click error."""
    words = shlex.split(line)
    for i, word in enumerate(words):  # the shell's redirection and pipes are not arguments
        if word in (">", ">>", "|", "<"):
            words = words[:i]
            break
    args = words[1:]
    command: click.Command = typer.main.get_command(app)
    path: list[str] = []
    while isinstance(command, click.Group) and args:
        default = getattr(command, "default_command", None)  # e.g. `provision F` = `create F`
        if args[0] not in command.commands and default and not args[0].startswith("-"):
            args.insert(0, default)
        if args[0] not in command.commands:
            break
        path.append(args.pop(0))
        command = command.commands[path[-1]]
    if isinstance(command, click.Group) and args and not args[0].startswith("-"):
        raise click.UsageError(f"no command {args[0]!r} under 'medsilo {' '.join(path)}'")
    command.make_context(" ".join(["medsilo", *path]), args)
    return path


def test_readme_command_lines_parse() -> None:
    lines = medsilo_lines((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(lines) > 20
    for line in lines:
        try:
            path = parse_command_line(line)
        except click.exceptions.Exit:  # `--help` parsed: it prints and exits 0
            continue
        except click.ClickException as err:
            pytest.fail(f"README: {line!r} does not parse: {err.format_message()}")
        assert path, f"README: {line!r} names no subcommand"


def test_every_command_group_has_a_readme_line() -> None:
    """Each group of subcommands (``attest``, ``registry``, ...) is shown at least once, so a
    reader learns it exists (``attest --help`` does not list ``registry update``)."""
    lines = medsilo_lines((ROOT / "README.md").read_text(encoding="utf-8"))
    named = {shlex.split(line)[1] for line in lines}
    root = typer.main.get_command(app)
    assert isinstance(root, click.Group)
    groups = {name for name, cmd in root.commands.items() if isinstance(cmd, click.Group)}
    assert groups - named == set()


def test_options_named_next_to_a_command_in_the_docs_exist() -> None:
    """``medsilo audit verify ... --allow-open`` in a doc, when the flag is
    ``--no-require-end``, sends readers to an error: every ``--option`` written after a
    ``medsilo`` command on the same line must be one of that command's options."""
    root = typer.main.get_command(app)
    wrong = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in re.finditer(r"medsilo((?: [a-z][a-z-]*)+)", line):
                words, command = match.group(1).split(), root
                while isinstance(command, click.Group) and words and words[0] in command.commands:
                    command = command.commands[words.pop(0)]
                if command is root or isinstance(command, click.Group):
                    continue
                known = {"--help"}
                for param in command.params:
                    known.update(param.opts, param.secondary_opts)
                rest = line[match.end() :].split("medsilo")[0]
                for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
                    if option not in known:
                        wrong.append(f"{doc.name}:{number}: {command.name} has no {option}")
    assert wrong == []


def test_readme_config_comment_lists_every_dataset() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("  dataset: heart_disease") : text.index("  partition:")]
    missing = [name for name in (*DATASET_NAMES, *SITE_HELD_DATASETS) if name not in block]
    assert missing == []


def test_parse_command_line_refuses_unknown_commands_and_options() -> None:
    with pytest.raises(click.ClickException):
        parse_command_line("medsilo audit verify runs/x --allow-open")
    with pytest.raises(click.ClickException):
        parse_command_line("medsilo attest update registry.json")


def test_example_federation_sites_are_the_heart_disease_hospitals() -> None:
    """A site kit's name is what its site loads from heart-disease data (docs/site-data.md),
    so the example must use the dataset's hospital names."""
    raw = yaml.safe_load((ROOT / "examples/deploy/federation.yaml").read_text())
    assert [site["name"] for site in raw["sites"]] == list(HOSPITALS)


def test_kit_readmes_name_the_start_commands_that_exist(tmp_path: Path) -> None:
    from medsilo.deploy.kits import provision
    from medsilo.deploy.spec import parse_federation

    raw = yaml.safe_load((ROOT / "examples/deploy/federation.yaml").read_text())
    kits = provision(parse_federation(raw | {"output": str(tmp_path)}), tmp_path)
    expected = {"coordinator": ["coordinator", "start"], "site": ["site", "start"]}
    for kit in kits:
        if kit.role not in expected:
            continue
        readme = (kit.path / "README.txt").read_text()
        lines = medsilo_lines(readme)
        assert [parse_command_line(line) for line in lines] == [expected[kit.role]], kit.path
        for script in re.findall(r"\./([\w.-]+\.sh)", readme):
            assert (kit.path / script).is_file(), f"{kit.path}/README.txt names {script}"
