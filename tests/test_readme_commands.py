"""Every command the READMEs and docs/*.md show runs as written from a set-up clone, with nothing exported:
its arguments parse, and the command starts without a SECRET_KEY in the environment."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", ROOT / "models" / "README.md", ROOT / "models" / "localiser" / "README.md",
           *sorted((ROOT / "docs").glob("*.md"))]


def shell_lines() -> list[str]:
    """The lines of every ```sh block, comments dropped and continued lines joined."""
    lines = []
    for readme in READMES:
        blocks = re.findall(r"```sh\n(.*?)```", readme.read_text(), re.S)
        blocks += re.findall(r"\n((?:    \S.*\n)+)", readme.read_text())  # indented blocks
        for block in blocks:
            joined = re.sub(r"\\\n\s*", " ", block)
            lines += [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip()]
    return lines


def manage_commands() -> list[list[str]]:
    """[command, args...] of every `manage.py` line; `[--option value]` marks an optional part."""
    found = []
    for line in shell_lines():
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", line))
        if "manage.py" in words:
            found.append(words[words.index("manage.py") + 1:])
    return found


def test_readmes_show_manage_commands():
    names = {words[0] for words in manage_commands()}
    assert {"make_demo_dataset", "train_classifier", "evaluate_classifier", "export_reviewed", "purge_predictions",
            "train_localiser", "migrate"} <= names


def test_every_manage_line_is_run_through_the_venv():
    for line in shell_lines():
        if "manage.py" in line:
            assert ".venv/bin/python manage.py" in line, line


@pytest.mark.parametrize("words", manage_commands(), ids=lambda w: " ".join(w)[:60])
def test_readme_arguments_parse(words):
    name, args = words[0], words[1:]
    parser = load_command_class(get_commands()[name], name).create_parser("manage.py", name)
    try:
        parser.parse_args(args)
    except SystemExit as exc:  # argparse's way of saying the arguments are wrong
        pytest.fail(f"manage.py {' '.join(words)}: arguments rejected ({exc})")


def test_commands_start_without_exported_settings():
    if not (ROOT / ".env").is_file():
        pytest.fail("no .env: scripts/setup.sh creates it (with a generated SECRET_KEY) before anything runs")
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE") and not k.startswith("IDCLASS_")}
    names = sorted({words[0] for words in manage_commands()})
    script = ("import sys\nfrom django.core.management import ManagementUtility\n"
              f"for name in {names!r}:\n"
              "    try:\n        ManagementUtility(['manage.py', name, '--help']).execute()\n"
              "    except SystemExit as exc:\n        assert not exc.code, (name, exc.code)\n"
              "    print('ok', name)\n")
    result = subprocess.run([sys.executable, "-c", "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
                             "'idclass.settings')\n" + script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in result.stdout.splitlines() if line.startswith("ok ")] == [f"ok {n}" for n in names]
