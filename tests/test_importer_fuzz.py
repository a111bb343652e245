"""The importer under hostile files: mutations of the seed plan, each answered within 2 s on
`/triage/import/` (files up to the 512 KiB limit), never a 500, and the database untouched when a file is
refused. The mutations are generated from the seed (seeded RNG), not hand-picked outputs.

Before this test: 20,000 blank lines in a section took 11.2 s (quadratic patterns), 1,000 findings 4.4 s,
impossible footer dates and 9999-12-31 were 500s, over-long owners a DataError on PostgreSQL."""

import random
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from triage.markdown_io import MAX_BYTES, MAX_FINDINGS
from triage.models import ActionItem, Finding, Investigation, InvestigationStat, TimelineEvent

SEED = (Path(__file__).parent / "fixtures" / "lscor-investigation-plan.md").read_bytes()
BUDGET_S = 2.0
ROOMY = MAX_BYTES - 4096  # room for the seed around a generated block


def _with(section: str, block: str) -> bytes:
    """The seed with `block` appended to the section whose heading starts `section`."""
    text = SEED.decode()
    at = text.index(section)
    end = text.index("\n## ", at + len(section))
    return (text[:end] + "\n" + block + text[end:]).encode()


def _footer(line: str, value: str) -> bytes:
    text = SEED.decode()
    start = text.index(f"**{line}**:")
    end = (text + "\n").index("\n", start)
    return (text[:start] + f"**{line}**: {value}" + text[end:]).encode()


def _fill(unit: str, budget: int = ROOMY - len(SEED)) -> str:
    return unit * (budget // len(unit.encode()))


def mutations():
    rng = random.Random(20251115)
    yield "seed", SEED, "imports"
    for cut in (0.1, 0.33, 0.5, 0.77, 0.95):  # truncations: the title survives, the rest is what it is
        yield f"truncated at {cut:.0%}", SEED[: int(len(SEED) * cut)], "either"
    for n in range(5):  # garbage bytes: invalid UTF-8 at random places
        data = bytearray(SEED)
        for _ in range(20):
            data.insert(rng.randrange(len(data)), rng.choice([0xFF, 0xC0, 0x80, 0xFE]))
        yield f"garbage bytes #{n}", bytes(data), "refused"
    yield "NUL and control bytes", SEED.replace(b"\n", b"\x00\n\x07", 40), "imports"
    yield "UTF-16 with BOM", SEED.decode().encode("utf-16"), "imports"
    yield "CRLF", SEED.replace(b"\n", b"\r\n"), "imports"
    yield "CR only", SEED.replace(b"\n", b"\r"), "imports"
    yield "blank lines in Environment", _with("### User Environment", _fill("\n")), "imports"
    yield "spaces in Environment", _with("### User Environment", _fill(" \t")), "imports"
    yield "one huge line", _with("## Reproduction Steps", "x" * (ROOMY - len(SEED))), "imports"
    yield "unclosed bold", _with("## Reproduction Steps", _fill("**a ")), "imports"
    yield "heading of dashes", _with("## Investigation Status", "#### " + _fill(" - ")), "imports"
    yield "bullets", _with("## Next Steps", "### Bulk (Within 1 week):\n" + _fill("- a\n")), "refused"
    yield (
        "findings over the cap",
        _with("## Investigation Status", "".join(f"#### {i}. Issue {i}\n**Status**: VERIFIED\n" for i in range(1000))),
        "refused",
    )
    reported = "".join(f"- **Issue alpha{i} beta{i}** - gamma{i}\n" for i in range(MAX_FINDINGS - 4))
    verdicts = "".join(f"#### {i}. Issue alpha{i} beta{i} - **VERIFIED**\n" for i in range(MAX_FINDINGS - 4))
    yield (
        "findings at the cap",
        _with("## Investigation Status", verdicts).replace(
            b"### Reported Issues:\n", b"### Reported Issues:\n" + reported.encode()
        ),
        "imports",
    )
    yield "headings at every level", _with("## Reproduction Steps", _fill("### a\n#### b\n##### c\n")), "imports"
    yield "findings' headings", _with("## Investigation Status", _fill("#### a\n")), "refused"
    yield "nested quotes", _with("## Reproduction Steps", "".join(">" * i + " q\n" for i in range(1, 400))), "imports"
    yield "nested lists", _with("## Reproduction Steps", "".join("  " * i + "- l\n" for i in range(400))), "imports"
    yield "fence never closed", _with("## Reproduction Steps", "```\n" + _fill("# not a title\n")), "imports"
    yield "over the limit", SEED + b"x" * MAX_BYTES, "refused"
    for value in ("2025-13-45", "2025-02-30", "9999-12-31", "0001-01-01", "1999-12-31"):
        yield f"Created {value}", _footer("Created", value), "refused"
    yield "Next Review 2025-02-30", _footer("Next Review", "2025-02-30"), "refused"
    yield "long owner", _footer("Investigation Owner", "o" * 500), "imports"
    yield "long review cadence", _footer("Next Review", "daily " * 100), "imports"
    yield "long timeframe", SEED.replace(b"(Within 24 hours)", b"(Within " + b"2" * 300 + b" hours)"), "imports"
    yield "blank title", b"#    \n" + SEED.split(b"\n", 1)[1], "refused"


def _counts():
    return tuple(m.objects.count() for m in (Investigation, Finding, ActionItem, TimelineEvent, InvestigationStat))


@pytest.mark.parametrize(
    ("name", "content", "expect"), list(mutations()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_mutated_plan_is_answered_in_time_and_a_refused_one_changes_nothing(client, bob, name, content, expect):
    client.force_login(bob)
    before = _counts()
    started = time.perf_counter()
    response = client.post(reverse("triage:import"), {"file": SimpleUploadedFile("plan.md", content)})
    elapsed = time.perf_counter() - started
    assert response.status_code in (200, 302), f"{name}: {response.status_code}"
    imported = response.status_code == 302
    if len(content) <= MAX_BYTES:
        assert elapsed < BUDGET_S, f"{name}: {elapsed:.2f} s for {len(content) // 1024} KiB"
    if expect != "either":
        assert imported == (expect == "imports"), f"{name}: {'imported' if imported else 'refused'}"
    if not imported:
        assert _counts() == before, f"{name}: a refused file changed the database"
        assert 'role="alert"' in response.content.decode(), f"{name}: refused without a message"
        return
    investigation = Investigation.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert investigation.title.strip()
    started = time.perf_counter()
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert time.perf_counter() - started < BUDGET_S, f"{name}: the imported investigation's page is slow"
