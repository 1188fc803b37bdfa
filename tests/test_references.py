"""Every file that code and docs name is in the repository: no reference leads nowhere.

Scanned: every tracked .py, .md, .toml, .service, .sh, .rules and .c file and the CI script.
Checked: markdown relative links (against the linking file's folder, with their #anchor against
the target's headings), paths that start at a top-level folder of the repository (against the
root; a glob must match at least one file) with the section a page is cited for, and bare names
of markdown files (some file of that name must exist). Upstream files cited as sources and other
tokens that only look like our paths are listed in NOT_OURS with their reason; this file itself,
which names them and made-up pages on purpose, is not scanned.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = (".py", ".md", ".toml", ".service", ".sh", ".rules", ".c")
SCRIPTS = (".ci/run",)  # shell scripts without a suffix
TOP_LEVEL = (
    "docs",
    "drivers",
    "gateway",
    "demo",
    "firmware_sim",
    "tests",
    "bench",
    "systemd",
    ".ci",
)

LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path token is not glued to a longer path or word on its left ("libnfc/drivers/pn532_uart.c"
# is upstream code, not our drivers/ folder) and is not a link target (LINK resolves those).
_TOP = "|".join(re.escape(d) for d in TOP_LEVEL)
REPO_PATH = re.compile(rf"(?<![\w./-])(?<!\]\()((?:{_TOP})/(?:[\w./*@-]|\{{[\w.,-]*\}})*)")
BARE_MD = re.compile(r"(?<![\w./-])([\w-]+\.md)\b")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# A section cited after a page, by number ("thingmagic.md 1.9", "section 3") or by heading.
SECTION = re.compile(r',? \(?(?:section )?(?:(\d+(?:\.\d+)?)\b|"([^"\n]+)")')

# (file, token) pairs that name no file of this repository, each with its reason.
NOT_OURS = {
    ("docs/drivers/pn532.md", "tests/base_clf_pn53x.py"): "nfcpy's test file, a cited source",
    ("docs/drivers/pn532.md", "tests/test_clf_pn532.py"): "nfcpy's test file, a cited source",
    ("gateway/uplink/session.py", "docs/reconnection.md"): "aiomqtt's docs page, a cited source",
    ("bench/drain.py", "bench/aiomqtt"): "an MQTT topic",
    ("bench/drain.py", "bench/paho"): "an MQTT topic",
}


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    this = Path(__file__).resolve().relative_to(ROOT).as_posix()
    names = (n for n in out.split("\0") if n.endswith(SUFFIXES) or n in SCRIPTS)
    return sorted(n for n in names if n != this)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def anchors(markdown: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings(markdown)}


def headings(markdown: Path) -> list[str]:
    prose = re.sub(r"^```.*?^```", "", markdown.read_text(), flags=re.MULTILINE | re.DOTALL)
    return [title.replace("`", "") for title in HEADING.findall(prose)]


def section_problem(page: Path, number: str | None, title: str | None) -> str | None:
    """A cited number must open a heading ("1.9 Streamed ...", "3. Messages"); a cited title must
    be a heading's whole text."""
    found = headings(page)
    if number is not None and not any(re.match(rf"{re.escape(number)}\.? ", h) for h in found):
        return f"no section {number}"
    if title is not None and title not in found:
        return f'no section "{title}"'
    return None


def link_problem(source: Path, target: str) -> str | None:
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return None
    path, _, anchor = target.partition("#")
    resolved = (source.parent / path) if path else source
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no heading #{anchor} in {resolved.name}"
    return None


def path_exists(token: str) -> bool:
    """``{a,b}`` names each of a and b; ``{name}`` (a placeholder) and ``*`` match any file."""
    alternatives = re.search(r"\{([^{}]*,[^{}]*)\}", token)
    if alternatives:
        head, tail = token[: alternatives.start()], token[alternatives.end() :]
        return all(path_exists(head + a + tail) for a in alternatives.group(1).split(","))
    pattern = re.sub(r"\{[^{}]*\}", "*", token)
    if "*" in pattern:
        return any(ROOT.glob(pattern))
    return (ROOT / pattern).exists()


def dangling_references() -> list[str]:
    files = tracked_files()
    basenames = {Path(name).name for name in files}
    problems = []
    unused = set(NOT_OURS)
    for name in files:
        source = ROOT / name
        text = source.read_text()
        if name.endswith(".md"):
            for match in LINK.finditer(text):
                problem = link_problem(source, match.group(1))
                if problem:
                    problems.append(
                        f"{name}:{line_of(text, match.start())}: link {match.group(1)}: {problem}"
                    )
        for match in REPO_PATH.finditer(text):
            token = match.group(1).rstrip(".")
            unused.discard((name, token))
            where = f"{name}:{line_of(text, match.start())}"
            if (name, token) in NOT_OURS:
                continue
            if not path_exists(token):
                problems.append(f"{where}: {token}")
            elif token.endswith(".md") and (cited := SECTION.match(text, match.end())):
                problem = section_problem(ROOT / token, *cited.groups())
                if problem:
                    problems.append(f"{where}: {token}: {problem}")
        for match in BARE_MD.finditer(text):
            if match.group(1) not in basenames:
                problems.append(f"{name}:{line_of(text, match.start())}: {match.group(1)}")
    return problems + [f"{name}: {token} is allowed but no longer named" for name, token in unused]


def test_every_named_file_exists() -> None:
    problems = dangling_references()
    assert not problems, f"{len(problems)} dangling references:\n" + "\n".join(problems)


def test_the_scan_sees_a_dangling_reference(tmp_path: Path) -> None:
    # The checks above pass vacuously if the patterns match nothing: they must see these.
    text = "See docs/no-such-page.md, [here](../missing.md) and ELSEWHERE.md."
    assert [m.group(1) for m in REPO_PATH.finditer(text)] == ["docs/no-such-page.md"]
    assert [m.group(1) for m in LINK.finditer(text)] == ["../missing.md"]
    assert [m.group(1) for m in BARE_MD.finditer(text)] == ["ELSEWHERE.md"]
    page = tmp_path / "page.md"
    page.write_text("# The wire, with sources\n")
    assert link_problem(page, "#the-wire-with-sources") is None
    assert link_problem(page, "#the-wire") is not None
    assert link_problem(page, "missing.md") == "no such file"
    cited = SECTION.match('.md, "The wire, with sources" and 2.1', 3)
    assert cited is not None
    assert section_problem(page, *cited.groups()) is None
    assert section_problem(page, "2.1", None) == "no section 2.1"
    assert section_problem(page, None, "The wire") == 'no section "The wire"'
