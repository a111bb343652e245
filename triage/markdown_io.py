r"""Investigation plans as Markdown: import (the seed's shape) and export (which imports back the same).

Pure: text in, a `Plan` out (or text out). Saving is triage.services' job, in one transaction.

Linear time on any input up to MAX_BYTES: no pattern can span lines (`[ \t]`, never `\s`, next to `^`
or `$` under re.M: `^\s*` retried at each of n blank lines is n² work), headings are read on their
first MAX_HEADING characters, and findings, action items and sections are capped (PlanError beyond)."""

import bisect
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import ftfy

MAX_BYTES = 512 * 1024
MAX_HEADING = 300  # characters of a heading line that are read
MAX_FINDINGS = 200
MAX_ACTION_ITEMS = 500
MAX_SECTIONS = 300
EARLIEST = date(2000, 1, 1)  # dates before this are typos, not history
REVIEW_HORIZON = timedelta(days=5 * 366)  # a "next review" further out than this is a typo too
FINDING_STATUS_WORDS = [
    # (pattern in the status line or heading, status)
    (re.compile(r"FALSE POSITIVE|ISSUE RESOLVED", re.I), "false_positive"),
    (re.compile(r"CONFIRMED|VERIFIED", re.I), "verified"),
    (re.compile(r"NEEDS INVESTIGATION|REQUIRES DEEP DIVE", re.I), "needs_investigation"),
    (re.compile(r"\bRESOLVED\b|\bFIXED\b", re.I), "resolved"),
    (re.compile(r"INVESTIGATING|IN PROGRESS", re.I), "investigating"),
]
COMPONENT_KEYWORDS = [
    *(
        (name.lower(), name)
        for name in (
            "SDK tracking module",
            "SDK registry",
            "SDK auth client",
            "MLflow auth config",
            "MLflow tracking server",
            "Auth service",
            "API gateway",
            "Website docs",
            "Onboarding portal",
        )
    ),
    ("tracking/__init__", "SDK tracking module"),
    ("hokusai.tracking", "SDK tracking module"),
    ("core/registry", "SDK registry"),
    ("auth/client", "SDK auth client"),
    ("mlflow_auth", "MLflow auth config"),
    ("mlflow tracking server", "MLflow tracking server"),
    ("auth service", "Auth service"),
    ("api gateway", "API gateway"),
    ("website", "Website docs"),
    ("documentation", "Website docs"),
]
SEVERITIES = ("critical", "high", "medium", "low")
TIMEFRAME = re.compile(r"\((Within [^)]+)\)", re.I)
PRIORITY = re.compile(r"\(Priority:\s*(\w+)\)", re.I)


class PlanError(ValueError):
    """The file cannot be imported; the message says why. Nothing is saved."""


@dataclass
class Plan:
    title: str = ""
    summary: str = ""
    severity: str = "medium"
    status: str = "new"
    environment: dict = field(default_factory=dict)
    components: list[str] = field(default_factory=list)
    impact_user: str = ""
    impact_business: str = ""
    impact_platform: str = ""
    reproduction_steps: str = ""
    risks: str = ""
    mitigations: str = ""
    findings: list[dict] = field(default_factory=list)
    action_items: list[dict] = field(default_factory=list)
    owner_label: str = ""
    created: date | None = None
    next_review: date | None = None
    review_cadence: str = ""
    component_details: str = ""
    notes: list[str] = field(default_factory=list)
    shortened: list[str] = field(default_factory=list, compare=False)  # set on import: values cut to fit
    digest: str = field(default="", compare=False)  # SHA-256 of the text as read (mojibake repaired, LF ends)


def repair_text(raw: bytes | str) -> str:
    """Decode and undo mojibake: UTF-8 emoji read as Mac Roman (the seed's `‚úÖ`), and what ftfy knows."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:  # a pasted plan too: the same limit, whichever way it came
        raise PlanError(f"The plan is {size // 1024} KiB; plans over {MAX_BYTES // 1024} KiB are not imported.")
    if isinstance(raw, bytes):
        encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"  # UTF-16 only with its BOM
        try:
            raw = raw.decode(encoding)
        except UnicodeDecodeError:
            raise PlanError("The file is not UTF-8 text. Save it as UTF-8 and import it again.") from None
    if re.search(r"[\ud800-\udfff]", raw):
        raise PlanError("The text holds broken characters (unpaired surrogates). Save it as UTF-8 and import it again.")
    # Line breaks to \n; NUL and other control characters (which PostgreSQL refuses or a page cannot show) go.
    raw = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", raw.replace("\r\n", "\n").replace("\r", "\n"))

    def mac_roman(match: re.Match) -> str:
        try:
            return match.group(0).encode("mac_roman").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return match.group(0)

    text = re.sub(r"[^\x00-\x7f]+", mac_roman, raw)
    # ftfy works a line at a time at ~12 µs a call (20 s for 500k blank lines): only lines with non-ASCII
    # characters can hold mojibake, and a repeated line is fixed once.
    return "\n".join(line if line.isascii() else _fix_line(line) for line in text.split("\n"))


@functools.lru_cache(maxsize=4096)
def _fix_line(line: str) -> str:
    return ftfy.fix_text(line, normalization="NFC", unescape_html=False)


FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)", re.M)


def _fences(text: str) -> list[int]:
    """Start and end offsets of fenced code blocks, flattened and sorted (an unclosed fence runs to the end)."""
    edges = [match.start() for match in FENCE.finditer(text)]
    if len(edges) % 2:
        edges.append(len(text))
    return edges


def _in_fence(edges: list[int], position: int) -> bool:
    return bisect.bisect_right(edges, position) % 2 == 1


def _headings(text: str, level: int):
    """Matches of headings of exactly `level` #s outside code blocks; group 1 is the heading's text."""
    pattern = re.compile(rf"^{'#' * level}[ \t]+(?!#)(.*)$" if level > 1 else r"^#[ \t]+(?!#)(.*)$", re.M)
    edges = _fences(text)
    return (match for match in pattern.finditer(text) if not _in_fence(edges, match.start()))


def _sections(text: str, level: int) -> list[tuple[str, str]]:
    """[(heading, body)] for headings of exactly `level` #s; text before the first is heading ''."""
    parts, last, heading = [], 0, ""
    for match in _headings(text, level):
        parts.append((heading, text[last : match.start()]))
        heading, last = match.group(1)[:MAX_HEADING].strip(), match.end()
        if len(parts) > MAX_SECTIONS:
            raise PlanError(f"The plan has over {MAX_SECTIONS} sections at one level; split it into several plans.")
    parts.append((heading, text[last:]))
    return parts


def _plain(heading: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", heading.lower().replace("*", "")).strip()


def _bullets(body: str) -> list[str]:
    return [m.group(1).strip() for m in BULLET.finditer(body)]


BULLET = re.compile(r"^[ \t]*(?:[-*]|\d+\.)[ \t]+(?:\[[ xX]\][ \t]+)?(.*)$", re.M)
CHECKBOX = re.compile(r"^[ \t]*[-*][ \t]+\[([ xX])\][ \t]+(.*)$", re.M)


def _strip_md(text: str) -> str:
    return re.sub(r"\*\*([^*\n]*)\*\*", r"\1", text).strip()


def _field(body: str, name: str) -> str:
    match = re.search(rf"^\*\*{re.escape(name)}\*\*:[ \t]*(.*)$", body, re.M | re.I)
    return match.group(1).strip() if match else ""


def _finding_status(text: str) -> str:
    for pattern, status in FINDING_STATUS_WORDS:
        if pattern.search(text):
            return status
    return "reported"


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z_]{4,}", text.lower())} - {"issue", "method", "missing", "with", "docs"}


def parse_plan(raw: bytes | str) -> Plan:
    text = repair_text(raw)
    digest = hashlib.sha256(text.strip().encode("utf-8", "surrogatepass")).hexdigest()
    if not text.strip():
        raise PlanError("The file is empty.")
    title_match = next(_headings(text, 1), None)
    if not title_match:
        raise PlanError("The plan has no title: its first heading must be a line starting with '# '.")
    title = _strip_md(title_match.group(1)[:MAX_HEADING])
    if not title:
        raise PlanError("The plan's title is empty: write it after the '# ' of its first line.")
    plan = Plan(title=title[:200], digest=digest)
    body_text, footer = text, ""
    parts = re.split(r"^---[ \t]*$", text, flags=re.M)
    if len(parts) > 1 and re.search(r"^\*\*(Investigation Owner|Created|Status|Next Review)\*\*:", parts[-1], re.M):
        body_text, footer = "---".join(parts[:-1]), parts[-1]
        _parse_footer(plan, footer)
    for heading, body in _sections(body_text, 2)[1:]:
        key = _plain(heading)
        if key.startswith("bug summary") or key == "summary":
            _parse_summary(plan, body)
        elif key.startswith("impact"):
            _parse_impact(plan, body)
        elif key.startswith("affected components"):
            plan.components = sorted({c for k, c in COMPONENT_KEYWORDS if k in body.lower()})
            plan.component_details = body.strip()  # the paths and URLs stay readable
        elif key.startswith("investigation status") or key == "findings":
            _parse_findings(plan, body)
        elif key.startswith("reproduction"):
            plan.reproduction_steps = body.strip()
        elif key.startswith("investigation approach") or key == "action items":
            _parse_phases(plan, body)
        elif key.startswith("next steps"):
            _parse_next_steps(plan, body)
        elif key.startswith("risk"):
            _parse_risks(plan, body)
        elif key == "environment":
            plan.environment = _parse_environment(body)
        else:
            plan.notes.append(f"## {heading}\n{body.strip()}")
    _match_reported_to_status(plan)
    if len(plan.findings) > MAX_FINDINGS:
        raise PlanError(f"The plan has {len(plan.findings)} findings; at most {MAX_FINDINGS} are imported.")
    if len(plan.action_items) > MAX_ACTION_ITEMS:
        raise PlanError(f"The plan has {len(plan.action_items)} action items; at most {MAX_ACTION_ITEMS} are imported.")
    return plan


def _parse_summary(plan: Plan, body: str) -> None:
    for heading, sub in _sections(body, 3):
        key = _plain(heading)
        if key.startswith("reported issues"):
            for line in _bullets(sub):
                title, _, description = _strip_md(line).partition(" - ")
                plan.findings.append(
                    {"title": title.strip()[:200], "description": description.strip(), "status": "reported"}
                )
        elif key.startswith("user environment") or key == "environment":
            plan.environment = _parse_environment(sub)
        elif heading == "":
            plan.summary = _strip_md(sub.strip())
        else:
            plan.notes.append(f"### {heading}\n{sub.strip()}")


def _parse_environment(body: str) -> dict:
    env: dict = {}
    extra: dict = {}
    for line in _bullets(body):
        name, sep, value = line.partition(":")
        lowered = line.lower()
        if lowered.startswith("python"):
            env["python"] = line.split()[-1] if not sep else value.strip()
        elif lowered.startswith("mlflow"):
            env["mlflow_version"] = line.split()[-1] if not sep else value.strip()
        elif "sdk" in name.lower() or "hokusai-ml-platform" in name.lower():
            env["sdk_version"] = value.strip()
            commit = re.search(r"commit\s+([0-9a-f]{7,40})", value)
            if commit:
                env["sdk_commit"] = commit.group(1)
        elif sep:
            extra[name.strip()] = value.strip()
        else:
            extra[line] = ""
    if extra:
        env["extra"] = extra
    return env


def _parse_impact(plan: Plan, body: str) -> None:
    severity = re.search(r"Severity:[ \t]*\**[ \t]*(\w+)", body, re.I)
    if severity and severity.group(1).lower() in SEVERITIES:
        plan.severity = severity.group(1).lower()
    labels = {"user impact": "impact_user", "business impact": "impact_business", "platform": "impact_platform"}
    for line in _bullets(body):
        name, _, value = _strip_md(line).partition(":")
        for label, attribute in labels.items():
            if name.strip().lower().startswith(label):
                setattr(plan, attribute, value.strip())
    for heading, sub in _sections(body, 3):
        if heading and not _plain(heading).startswith("severity"):
            plan.notes.append(f"### {heading}\n{sub.strip()}")


def _parse_findings(plan: Plan, body: str) -> None:
    status_findings = []
    for heading, sub in _sections(body, 4)[1:]:
        if len(status_findings) >= MAX_FINDINGS:
            raise PlanError(f"The plan has over {MAX_FINDINGS} findings; at most {MAX_FINDINGS} are imported.")
        cleaned = " ".join(_strip_md(re.sub(r"^\d+\.[ \t]*", "", heading)).split())
        title = cleaned.split(" - ")[0].strip()
        status_line = _strip_md(_field(sub, "Status"))
        status = _finding_status(status_line) if status_line else _finding_status(heading)
        # "FALSE POSITIVE - Components exist ..." -> the reason is what follows the verdict words
        reason = status_line.split(" - ", 1)[1].strip() if " - " in status_line else status_line
        bullets = [
            b for b in _bullets(sub) if not b.startswith("**Possible causes**") and not b.startswith("**Root cause**")
        ]
        finding = {
            "title": title[:200],
            "status": status,
            "verdict_reason": reason,
            "evidence": "\n".join(f"- {b}" for b in bullets),
            "possible_causes": _strip_md(re.sub(r"^-\s*", "", _field(sub.replace("- **", "**"), "Possible causes"))),
            "root_cause": _strip_md(_field(sub.replace("- **", "**"), "Root cause")),
        }
        status_findings.append(finding)
    plan._status_findings = status_findings  # matched to the reported issues after all sections are read
    trailing = _sections(body, 3)
    for heading, sub in trailing:
        if heading and not _sections(sub, 4)[1:] and sub.strip():
            plan.notes.append(f"### {heading}\n{sub.strip()}")


def _match_reported_to_status(plan: Plan) -> None:
    """The seed lists the issues twice (reported, then with a verdict) in another order: pair them by words."""
    status_findings = getattr(plan, "_status_findings", [])
    if len(plan.findings) > MAX_FINDINGS:
        raise PlanError(f"The plan has {len(plan.findings)} reported issues; at most {MAX_FINDINGS} are imported.")
    # Word sets computed once: this is (reported × verdicts) set intersections, both capped at MAX_FINDINGS.
    unmatched = [(_words(s["title"]), s) for s in status_findings]
    for finding in plan.findings:
        words = _words(finding["title"] + " " + finding["description"])
        best = max(unmatched, key=lambda pair: len(pair[0] & words), default=None)
        if best and best[0] & words:
            unmatched.remove(best)
            finding.update({k: v for k, v in best[1].items() if k != "title"})
    for _, leftover in unmatched:  # a verdict for an issue the summary did not list
        plan.findings.append({"description": "", **leftover})


def _room_for_one_more(plan: Plan) -> None:
    if len(plan.action_items) >= MAX_ACTION_ITEMS:
        raise PlanError(f"The plan has over {MAX_ACTION_ITEMS} action items; at most {MAX_ACTION_ITEMS} are imported.")


def _parse_phases(plan: Plan, body: str) -> None:
    for heading, sub in _sections(body, 3)[1:]:
        priority = PRIORITY.search(heading)
        phase = PRIORITY.sub("", heading).strip()
        for line in CHECKBOX.finditer(sub):
            _room_for_one_more(plan)
            plan.action_items.append(
                {
                    "phase": phase[:120],
                    "priority": priority.group(1).lower()
                    if priority and priority.group(1).lower() in SEVERITIES
                    else "medium",
                    "title": _strip_md(line.group(2))[:300],
                    "done": line.group(1).lower() == "x",
                    "timeframe": "",
                }
            )


def _parse_next_steps(plan: Plan, body: str) -> None:
    for heading, sub in _sections(body, 3)[1:]:
        timeframe = TIMEFRAME.search(heading)
        phase = TIMEFRAME.sub("", heading).rstrip(": ").strip()
        for line in _bullets(sub):
            _room_for_one_more(plan)
            plan.action_items.append(
                {
                    "phase": phase[:120],
                    "priority": "high" if timeframe and "24 hours" in timeframe.group(1) else "medium",
                    "title": _strip_md(line)[:300],
                    "done": False,
                    "timeframe": timeframe.group(1) if timeframe else "",
                }
            )


def _parse_risks(plan: Plan, body: str) -> None:
    for heading, sub in _sections(body, 3)[1:]:
        key = _plain(heading)
        if "mitigation" in key:
            plan.mitigations = sub.strip()
        elif "risk" in key:
            plan.risks = sub.strip()
        else:
            plan.notes.append(f"### {heading}\n{sub.strip()}")


def _parse_footer(plan: Plan, body: str) -> None:
    owner = _field(body, "Investigation Owner")
    if owner:
        plan.owner_label = owner
    created = _field(body, "Created")
    if re.match(r"\d{4}-\d{2}-\d{2}$", created):
        plan.created = _footer_date("Created", created, latest=date.today() + timedelta(days=1))
    status = _field(body, "Status").lower()
    if status:
        plan.status = {
            "investigation in progress": "investigating",
            "resolved": "resolved",
            "closed": "closed",
            "new": "new",
            "investigating": "investigating",
            "root cause identified": "root_cause_identified",
            "fixing": "fixing",
            "monitoring": "monitoring",
        }.get(status, plan.status)
    review = _field(body, "Next Review")
    if re.match(r"\d{4}-\d{2}-\d{2}$", review):
        plan.next_review = _footer_date("Next Review", review, latest=date.today() + REVIEW_HORIZON)
    elif review:
        plan.review_cadence = review


def _footer_date(name: str, value: str, *, latest: date) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise PlanError(f"**{name}**: {value} is not a date: write it as YYYY-MM-DD.") from None
    if not EARLIEST <= day <= latest:
        raise PlanError(
            f"**{name}**: {value} is out of range: it must be between {EARLIEST.isoformat()} and {latest.isoformat()}."
        )
    return day


STATUS_WORDS = {
    "reported": "REPORTED",
    "investigating": "INVESTIGATING",
    "verified": "VERIFIED",
    "false_positive": "FALSE POSITIVE",
    "needs_investigation": "NEEDS INVESTIGATION",
    "resolved": "RESOLVED",
}
INVESTIGATION_STATUS_WORDS = {
    "new": "NEW",
    "investigating": "INVESTIGATING",
    "root_cause_identified": "ROOT CAUSE IDENTIFIED",
    "fixing": "FIXING",
    "monitoring": "MONITORING",
    "resolved": "RESOLVED",
    "closed": "CLOSED",
}


def export_plan(plan: Plan) -> str:
    """Markdown in the seed's shape; parse_plan(export_plan(p)) gives the same structure."""
    out = [f"# {plan.title}", "", "## Bug Summary", "", plan.summary, "", "### Reported Issues:"]
    for number, finding in enumerate(plan.findings, start=1):
        out.append(f"{number}. **{finding['title']}** - {finding.get('description', '')}".rstrip(" -"))
    env = plan.environment
    out += ["", "### User Environment:"]
    if env.get("python"):
        out.append(f"- Python {env['python']}")
    if env.get("sdk_version"):
        out.append(f"- hokusai-ml-platform: {env['sdk_version']}")
    if env.get("mlflow_version"):
        out.append(f"- MLflow {env['mlflow_version']}")
    out += [f"- {k}: {v}" if v else f"- {k}" for k, v in env.get("extra", {}).items()]
    out += ["", "## Impact Analysis", "", f"### Severity: **{plan.severity.upper()}**"]
    out += [f"- **User Impact**: {plan.impact_user}", f"- **Business Impact**: {plan.impact_business}"]
    out += [f"- **Platform Integrity**: {plan.impact_platform}", ""]
    if plan.component_details:  # the original section, from which the same components are read back
        out += ["## Affected Components/Services", plan.component_details, ""]
    elif plan.components:
        out += ["## Affected Components/Services", ""] + [f"- {name}" for name in plan.components] + [""]
    out += ["## Investigation Status", ""]
    for number, finding in enumerate(plan.findings, start=1):
        out += [f"#### {number}. {finding['title']} - **{STATUS_WORDS[finding['status']]}**"]
        out += [f"**Status**: {STATUS_WORDS[finding['status']]} - {finding.get('verdict_reason', '')}".rstrip(" -")]
        if finding.get("evidence"):
            out.append(finding["evidence"])
        if finding.get("root_cause"):
            out.append(f"- **Root cause**: {finding['root_cause']}")
        if finding.get("possible_causes"):
            out.append(f"- **Possible causes**: {finding['possible_causes']}")
        out.append("")
    out += ["## Reproduction Steps", "", plan.reproduction_steps, "", "## Investigation Approach", ""]
    phases: dict[tuple, list] = {}
    steps: dict[tuple, list] = {}
    for item in plan.action_items:
        bucket = steps if item.get("timeframe") else phases
        key = (item["phase"], item.get("timeframe") or item["priority"])
        bucket.setdefault(key, []).append(item)
    for (phase, priority), items in phases.items():
        out += (
            [f"### {phase} (Priority: {priority.upper()})"]
            + [f"- [{'x' if i['done'] else ' '}] {i['title']}" for i in items]
            + [""]
        )
    out += ["## Next Steps", ""]
    for (phase, timeframe), items in steps.items():
        out += [f"### {phase} ({timeframe}):"] + [f"{n}. {i['title']}" for n, i in enumerate(items, start=1)] + [""]
    out += [
        "## Risk Assessment",
        "",
        "### High Risk Areas:",
        plan.risks,
        "",
        "### Mitigation Strategies:",
        plan.mitigations,
        "",
    ]
    for note in plan.notes:
        out += [note if note.startswith("#") else f"## Notes\n{note}", ""]
    out += ["---", ""]
    if plan.owner_label:
        out.append(f"**Investigation Owner**: {plan.owner_label}")
    if plan.created:
        out.append(f"**Created**: {plan.created.isoformat()}")
    out.append(f"**Status**: {INVESTIGATION_STATUS_WORDS[plan.status]}")
    if plan.next_review:
        out.append(f"**Next Review**: {plan.next_review.isoformat()}")
    elif plan.review_cadence:
        out.append(f"**Next Review**: {plan.review_cadence}")
    return "\n".join(out).rstrip() + "\n"
