"""Find API keys and bearer tokens in free text and replace them by their masked form."""

import re

KEY_PATTERN = re.compile(r"\bhk_(?:live|test|dev)_[A-Za-z0-9]{6,}")
# The portal's own API access tokens (api/services.py: hkp_ and 43 letters or digits), also without "Bearer".
TOKEN_PATTERN = re.compile(r"\bhkp_[A-Za-z0-9]{8,}")
BEARER_PATTERN = re.compile(
    r"(?i)(\b(?:bearer|apikey)\s+|x-api-key:\s*|MLFLOW_TRACKING_TOKEN=\"?)(?!hk_)([A-Za-z0-9._~+/=-]{12,})"
)


def mask_key(key: str) -> str:
    """`hk_live_pIDV2HHx…tN` style: the prefix, four characters, an ellipsis, the last two."""
    prefix_end = key.find("_", 3) + 1 if key.startswith("hk_") else 0
    body = key[prefix_end:]
    if len(body) <= 8:
        return key[:prefix_end] + "…"
    return f"{key[:prefix_end]}{body[:4]}…{body[-2:]}"


def redact(text: str, *secrets: str) -> tuple[str, int]:
    """Mask every API key, access token, bearer token and each of `secrets` in `text`; return (text, count)."""
    if not text:
        return text, 0
    count = 0
    for secret in secrets:
        if secret and secret in text:
            count += text.count(secret)
            text = text.replace(secret, mask_key(secret))

    def _key(match: re.Match) -> str:
        nonlocal count
        count += 1
        return mask_key(match.group(0))

    def _bearer(match: re.Match) -> str:
        nonlocal count
        token = match.group(2)
        count += 1
        return match.group(1) + mask_key(token)

    text = KEY_PATTERN.sub(_key, text)
    text = TOKEN_PATTERN.sub(_key, text)
    text = BEARER_PATTERN.sub(_bearer, text)
    return text, count


def redact_value(value, *secrets: str) -> tuple[object, int]:
    """`redact` through strings, dicts and lists (step evidence, JSON fields); returns (value, count)."""
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, dict):
        pairs = [(key, redact_value(item, *secrets)) for key, item in value.items()]
        return {key: item for key, (item, _) in pairs}, sum(n for _, (_, n) in pairs)
    if isinstance(value, list):
        items = [redact_value(item, *secrets) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    return value, 0
