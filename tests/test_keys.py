"""What a developer pastes into "API key": normalised, validated, never saved when wrong."""

import pytest

from hokusai_portal.redaction import mask_key, redact
from onboarding.keys import KeyFormatError, key_normalise
from tests.conftest import SEED_KEY


def test_it_masks_like_the_contract():
    assert mask_key(SEED_KEY) == "hk_live_pIDV…tN"


@pytest.mark.parametrize(
    ("pasted", "notice"),
    [
        (f"  {SEED_KEY}\n", None),
        (f"Bearer {SEED_KEY}", "Bearer"),
        (f"MLFLOW_TRACKING_TOKEN={SEED_KEY}", "MLFLOW_TRACKING_TOKEN="),
        (f'export MLFLOW_TRACKING_TOKEN="{SEED_KEY}"\n', "MLFLOW_TRACKING_TOKEN="),
        (f"Authorization: Bearer {SEED_KEY}", "Authorization:"),
    ],
)
def test_it_strips_what_people_paste_around_a_key(pasted, notice):
    normalised = key_normalise(pasted)
    assert normalised.key == SEED_KEY
    assert normalised.masked == "hk_live_pIDV…tN"
    if notice:
        assert any(notice in text for text in normalised.notices)
    else:
        assert normalised.notices == []


@pytest.mark.parametrize(
    ("pasted", "says"),
    [
        ("", "Paste your API key"),
        (SEED_KEY.replace("p", "р", 1), "Cyrillic Small Letter Er"),  # look-alike
        (SEED_KEY[:22] + " " + SEED_KEY[22:], "space or line break inside"),
        ("sk_live_pIDV2HHxM4S7nNYgYjz16MvsazH7DQtN", "start with hk_live_, hk_test_ or hk_dev_"),
        (SEED_KEY[:20], "this one has 12"),
        ("hk_live_" + "a" * 41, "this one has 41"),
        (SEED_KEY[:34] + "-" + SEED_KEY[34:], "only letters and digits"),
    ],
)
def test_it_explains_what_is_wrong(pasted, says):
    with pytest.raises(KeyFormatError) as error:
        key_normalise(pasted)
    assert says in str(error.value)


def test_redaction_masks_keys_and_bearer_tokens_in_free_text():
    text = f'curl -H "Authorization: Bearer {SEED_KEY}" https://x; token eyJhbGciOiJIUzI1NiJ9.abcdefghijkl in "Bearer eyJhbGciOiJIUzI1NiJ9.abcdefghijkl"'
    cleaned, count = redact(text)
    assert SEED_KEY not in cleaned
    assert "hk_live_pIDV…tN" in cleaned
    assert 'eyJhbGciOiJIUzI1NiJ9.abcdefghijkl"' not in cleaned
    assert count == 2
