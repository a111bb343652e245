"""Investigation plans as Markdown: import (the seed's shape) and export (which imports back the same).

Pure: text in, a `Plan` out (or text out). Saving is triage.services' job, in one transaction."""

import re
from dataclasses import dataclass, field
from datetime import date

import ftfy

MAX_BYTES = 512 * 1024
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


def repair_text(raw: bytes | str) -> str:
    """Decode and undo mojibake: UTF-8 emoji read as Mac Roman (the seed's `‚úÖ`), and what ftfy knows."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_BYTES:
            raise PlanError(f"The file is {len(raw) // 1024} KiB; plans over {MAX_BYTES // 1024} KiB are not imported.")
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PlanError("The file is not UTF-8 text. Save it as UTF-8 and import it again.") from None

    def mac_roman(match: re.Match) -> str:
        try:
            return match.group(0).encode("mac_roman").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return match.group(0)

    text = re.sub(r"[^\x00-\x7f]+", mac_roman, raw)
    return ftfy.fix_text(text, normalization="NFC")


def _sections(text: str, level: int) -> list[tuple[str, str]]:
    """[(heading, body)] for headings of exactly `level` #s; text before the first is heading ''."""
    pattern = re.compile(rf"^{'#' * level} (?!#)(.*)$", re.M)
    parts, last, heading = [], 0, ""
    for match in pattern.finditer(text):
        parts.append((heading, text[last : match.start()]))
        heading, last = match.group(1).strip(), match.end()
    parts.append((heading, text[last:]))
    return parts


def _plain(heading: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", heading.lower().replace("*", "")).strip()


def _bullets(body: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^\s*(?:[-*]|\d+\.)\s+(?:\[[ xX]\]\s+)?(.*)$", body, re.M)]


def _strip_md(text: str) -> str:
    return re.sub(r"\*\*(.*?)\*\*", r"\1", text).strip()


def _field(body: str, name: str) -> str:
    match = re.search(rf"^\*\*{re.escape(name)}\*\*:\s*(.*)$", body, re.M | re.I)
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
    if not text.strip():
        raise PlanError("The file is empty.")
    title_match = re.search(r"^# (?!#)(.+)$", text, re.M)
    if not title_match:
        raise PlanError("The plan has no title: its first heading must be a line starting with '# '.")
    plan = Plan(title=_strip_md(title_match.group(1))[:200])
    body_text, footer = text, ""
    parts = re.split(r"^---\s*$", text, flags=re.M)
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
    severity = re.search(r"Severity:\s*\**\s*(\w+)", body, re.I)
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
        cleaned = _strip_md(re.sub(r"^\d+\.\s*", "", heading))
        title = re.split(r"\s+-\s+", cleaned)[0].strip()
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
    unmatched = list(status_findings)
    for finding in plan.findings:
        best = max(
            unmatched,
            key=lambda s: len(_words(s["title"]) & _words(finding["title"] + " " + finding["description"])),
            default=None,
        )
        if best and _words(best["title"]) & _words(finding["title"] + " " + finding["description"]):
            unmatched.remove(best)
            finding.update({k: v for k, v in best.items() if k != "title"})
    for leftover in unmatched:  # a verdict for an issue the summary did not list
        plan.findings.append({"description": "", **leftover})


def _parse_phases(plan: Plan, body: str) -> None:
    for heading, sub in _sections(body, 3)[1:]:
        priority = PRIORITY.search(heading)
        phase = PRIORITY.sub("", heading).strip()
        for line in re.finditer(r"^\s*[-*]\s+\[([ xX])\]\s+(.*)$", sub, re.M):
            plan.action_items.append({
                "phase": phase[:120],
                "priority": priority.group(1).lower() if priority and priority.group(1).lower() in SEVERITIES else "medium",
                "title": _strip_md(line.group(2))[:300],
                "done": line.group(1).lower() == "x",
                "timeframe": "",
            })  # fmt: skip


def _parse_next_steps(plan: Plan, body: str) -> None:
    for heading, sub in _sections(body, 3)[1:]:
        timeframe = TIMEFRAME.search(heading)
        phase = TIMEFRAME.sub("", heading).rstrip(": ").strip()
        for line in _bullets(sub):
            plan.action_items.append({
                "phase": phase[:120],
                "priority": "high" if timeframe and "24 hours" in timeframe.group(1) else "medium",
                "title": _strip_md(line)[:300],
                "done": False,
                "timeframe": timeframe.group(1) if timeframe else "",
            })  # fmt: skip


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
        plan.created = date.fromisoformat(created)
    status = _field(body, "Status").lower()
    if status:
        plan.status = {
            "investigation in progress": "investigating", "resolved": "resolved", "closed": "closed", "new": "new",
            "investigating": "investigating", "root cause identified": "root_cause_identified", "fixing": "fixing",
            "monitoring": "monitoring",
        }.get(status, plan.status)  # fmt: skip
    review = _field(body, "Next Review")
    if re.match(r"\d{4}-\d{2}-\d{2}$", review):
        plan.next_review = date.fromisoformat(review)
    elif review:
        plan.review_cadence = review


STATUS_WORDS = {
    "reported": "REPORTED", "investigating": "INVESTIGATING", "verified": "VERIFIED", "false_positive": "FALSE POSITIVE",
    "needs_investigation": "NEEDS INVESTIGATION", "resolved": "RESOLVED",
}  # fmt: skip
INVESTIGATION_STATUS_WORDS = {
    "new": "NEW", "investigating": "INVESTIGATING", "root_cause_identified": "ROOT CAUSE IDENTIFIED",
    "fixing": "FIXING", "monitoring": "MONITORING", "resolved": "RESOLVED", "closed": "CLOSED",
}  # fmt: skip


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
