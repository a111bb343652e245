"""API key normalisation and validation (pure): what a developer pastes -> a key, or a clear error."""

import re
import unicodedata
from dataclasses import dataclass, field

from hokusai_portal.redaction import mask_key

PREFIXES = ("hk_live_", "hk_test_", "hk_dev_")
BODY_MIN, BODY_MAX = 32, 40
BODY_PATTERN = re.compile(r"^[A-Za-z0-9]+$")
PASTED_PREFIXES = (
    (re.compile(r"^(?:export\s+)?MLFLOW_TRACKING_TOKEN\s*=\s*", re.I), "MLFLOW_TRACKING_TOKEN="),
    (re.compile(r"^(?:export\s+)?HOKUSAI_API_KEY\s*=\s*", re.I), "HOKUSAI_API_KEY="),
    (re.compile(r"^Authorization:\s*", re.I), "Authorization:"),
    (re.compile(r"^(?:Bearer|ApiKey)\s+", re.I), "Bearer "),
)


class KeyFormatError(ValueError):
    """The pasted text is not a Hokusai API key; the message says why and what to do."""


@dataclass
class NormalisedKey:
    key: str
    notices: list[str] = field(default_factory=list)

    @property
    def masked(self) -> str:
        return mask_key(self.key)

    @property
    def key_tier(self) -> str:
        """live, test or dev."""
        return self.key.split("_")[1]


def _describe(char: str) -> str:
    name = unicodedata.name(char, f"U+{ord(char):04X}")
    return f"'{char}' ({name.title()})"


def key_normalise(raw: str) -> NormalisedKey:
    """Trim, strip a pasted `Bearer ` / `MLFLOW_TRACKING_TOKEN=` prefix (with a notice), validate."""
    if raw is None or not raw.strip():
        raise KeyFormatError("Paste your API key: it starts with hk_live_, hk_test_ or hk_dev_.")
    text = raw.strip()
    notices = []
    for _ in range(3):  # e.g. "Authorization: Bearer hk_..."
        for pattern, label in PASTED_PREFIXES:
            stripped = pattern.sub("", text, count=1)
            if stripped != text:
                notices.append(f"Removed the “{label.strip()}” prefix you pasted; only the key itself is saved.")
                text = stripped.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
        notices.append("Removed the quotes around the key.")

    for position, char in enumerate(text, start=1):
        if not char.isascii():
            lookalike = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            hint = f" It looks like '{lookalike}' but is not." if lookalike else ""
            raise KeyFormatError(
                f"Character {position} is {_describe(char)}, which is not allowed in an API key.{hint} "
                "Copy the key again from your Hokusai account, or type that character by hand."
            )
        if char.isspace():
            raise KeyFormatError(
                f"The key has a space or line break inside it (character {position}). "
                "Paste the key as one unbroken line."
            )
    if not text.startswith(PREFIXES):
        raise KeyFormatError(
            "Hokusai API keys start with hk_live_, hk_test_ or hk_dev_. "
            "This looks like another kind of token: use the key from your Hokusai account settings."
        )
    prefix = next(p for p in PREFIXES if text.startswith(p))
    body = text[len(prefix) :]
    if not BODY_PATTERN.match(body or "-"):
        raise KeyFormatError(f"After {prefix} a key has only letters and digits.")
    if not BODY_MIN <= len(body) <= BODY_MAX:
        raise KeyFormatError(
            f"After {prefix} a key has {BODY_MIN} to {BODY_MAX} letters and digits; this one has {len(body)}. "
            "It may have been cut off when copying."
        )
    return NormalisedKey(key=text, notices=notices)
