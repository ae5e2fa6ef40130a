"""README.md and docs/: a first screen that gets mailpin running, links that lead somewhere, nothing lost.

The README is the page a newcomer reads first (issue 18): what mailpin is, then the two set-up commands
(`.ci/run` runs the second, tests/test_demo.py the first), then install; the reference moved to
docs/guide.md and docs/config.md, and every section the README had is still a heading there.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide.md"
CONFIG = ROOT / "docs" / "config.md"
DEMO_COMMAND = "bash contrib/demo.sh"
TEST_COMMAND = "bash tests/run"
FIRST_SCREEN = 24  # lines: what a terminal or a repository page shows before one scrolls

# Every heading the README had before the reference moved to docs/ (its 689 lines, commit aa37e59).
OLD_HEADINGS = [
    "mailpin",
    "Install",
    "The two set-up commands (fresh Debian / Ubuntu, from a checkout)",
    "`mailpin demo`",
    "Quick start on your own accounts",
    "Setting it up in your stack: `contrib/`",
    "Trust model and pin levels",
    "Exit statuses and reason codes",
    "When a block fires",
    "FAQ",
    "Gmail rotates its certificates every few months — will I be blocked each time?",
    "My server uses a self-signed certificate",
    "My laptop is often offline",
    "Can I keep `pins.conf` with my dotfiles?",
    "What does mailpin not protect against?",
    "Reference",
    "`mailpin probe`",
    "`mailpin accounts`",
    "TLS profiles: `init`, `check`, `review`, `accept`, `forget`",
    "In front of the tools: `mailpin run`, the shims, held mail",
    "Enforcement: the verified session is the one that carries the mail",
    "Notifications",
    "`mailpin doctor`",
    "Settings: `$XDG_CONFIG_HOME/mailpin/config`",
    "Files",
    "Benchmarks",
    "Security: `docs/SECURITY.md`",
    "Layout",
]


def _headings(path: Path) -> list[str]:
    """The Markdown headings of a file, outside fenced code blocks."""
    found, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.append(match.group(1).strip())
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, only letters, digits, `-`, `_` and spaces, spaces to `-`."""
    text = heading.lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in _headings(path):
        slug, n = _slug(heading), 1
        while slug in anchors:  # a repeated heading gets -1, -2, …
            slug, n = f"{_slug(heading)}-{n}", n + 1
        anchors.add(slug)
    return anchors


def test_the_first_screen_is_what_mailpin_is_then_the_two_set_up_commands() -> None:
    lines = README.read_text().splitlines()
    screen = "\n".join(lines[:FIRST_SCREEN])
    assert lines[0] == "# mailpin"
    intro = screen.split("\n## ", 1)[0]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(intro.splitlines()[1:]).strip()) if s]
    assert 2 <= len(sentences) <= 4, sentences
    assert "msmtp" in intro and "mbsync" in intro and "offlineimap" in intro
    assert DEMO_COMMAND in lines[:FIRST_SCREEN] and TEST_COMMAND in lines[:FIRST_SCREEN]
    assert lines.index(DEMO_COMMAND) < lines.index(TEST_COMMAND)
    prose = " ".join(screen.split())
    assert re.search(r"The test suite takes about [67] minutes", prose), "how long the tests take"
    assert "after it, mailpin is installed in the checkout's virtualenv as `.venv/bin/mailpin`" in prose


def test_install_follows_the_set_up_commands_and_the_readme_stays_short() -> None:
    headings = _headings(README)
    assert headings[:3] == ["mailpin", "The two set-up commands (fresh Debian / Ubuntu, from a checkout)", "Install"]
    assert len(README.read_text().splitlines()) <= 200
    text = README.read_text()
    for reference in ("| `mode-changed` |", "`mailpin probe`\n", "[notify]\ndesktop = yes", "One line per check"):
        assert reference not in text, f"reference material in the README: {reference!r}"


def test_ci_and_the_demo_test_run_the_readmes_commands() -> None:
    readme = README.read_text().splitlines()
    assert readme.count(DEMO_COMMAND) == 1 and readme.count(TEST_COMMAND) == 1
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text().splitlines()
    assert f"`{DEMO_COMMAND}`" in (ROOT / "tests" / "test_demo.py").read_text()
    assert (ROOT / "contrib" / "demo.sh").is_file() and (ROOT / "tests" / "run").is_file()


def test_every_heading_of_the_old_readme_is_in_the_readme_or_docs() -> None:
    present = set(_headings(README)) | set(_headings(GUIDE)) | set(_headings(CONFIG))
    assert [heading for heading in OLD_HEADINGS if heading not in present] == []


def test_the_readme_links_the_guide_and_the_config_reference() -> None:
    text = README.read_text()
    for target in ("docs/guide.md", "docs/config.md", "docs/SECURITY.md", "contrib/README.md"):
        assert f"]({target})" in text, target


def _links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every inline Markdown link outside fenced code, http(s) and mailto excluded."""
    found, fenced = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            found += [(number, t) for t in re.findall(r"\]\(([^)\s]+)\)", line) if not re.match(r"\w+:", t)]
    return found


def test_links_in_the_docs_lead_to_a_file_and_a_heading_that_exist() -> None:
    pages = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "contrib" / "README.md"]
    broken = []
    checked = 0
    for page in pages:
        for number, target in _links(page):
            checked += 1
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            where = f"{page.relative_to(ROOT)}:{number}: {target}"
            if not dest.exists():
                broken.append(f"{where}: no such file")
            elif anchor and (dest.suffix != ".md" or anchor not in _anchors(dest)):
                broken.append(f"{where}: no such heading")
    assert broken == []
    assert checked >= 30  # the README and the guide link each other's sections


def test_a_broken_link_is_found() -> None:
    assert _slug("TLS profiles: `init`, `check`, `review`, `accept`, `forget`") == (
        "tls-profiles-init-check-review-accept-forget"
    )
    assert _slug("Gmail rotates its certificates every few months — will I be blocked each time?") == (
        "gmail-rotates-its-certificates-every-few-months--will-i-be-blocked-each-time"
    )
    assert "when-a-block-fires" in _anchors(GUIDE) and "when-a-block-files" not in _anchors(GUIDE)


def test_the_git_section_names_gits_perl_error_and_the_package() -> None:
    for page in (README, GUIDE):
        text = " ".join(page.read_text().split())
        assert "Can't locate Email/Valid.pm in @INC" in text and "`libemail-valid-perl`" in text, page.name
        assert "git's bug" in text, page.name
