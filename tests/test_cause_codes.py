"""Every documented cause code is emitted by some code path, and README lists exactly the documented
ones: a code nothing emits is a promise the UI never keeps (WORKERS_UNAVAILABLE and TOKEN_ID_INVALID were
documented and never emitted)."""

import ast
import re
from pathlib import Path

from onboarding.diagnosis import CAUSES

ROOT = Path(__file__).resolve().parent.parent


def emitted_codes() -> set[str]:
    """String constants in the code that emits causes, outside the CAUSES table itself."""
    found: set[str] = set()
    for path in [*sorted((ROOT / "onboarding").glob("*.py")), ROOT / "onboarding/management/commands/register.py"]:
        tree = ast.parse(path.read_text())
        table = next(
            (
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.AnnAssign | ast.Assign)
                and any(getattr(t, "id", "") == "CAUSES" for t in getattr(n, "targets", [getattr(n, "target", None)]))
            ),
            None,
        )
        skip = {id(n) for n in ast.walk(table)} if table else set()
        found |= {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        }
    return found


def test_every_documented_cause_is_emitted_somewhere():
    never = sorted(set(CAUSES) - emitted_codes() - {"SKIPPED"})  # SKIPPED: the engine's own, by name
    assert never == [], f"documented in CAUSES but emitted nowhere: {never}"


def test_readme_lists_exactly_the_documented_causes():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Cause codes", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"`([A-Z][A-Z_]+)`", section))
    assert listed == set(CAUSES)
