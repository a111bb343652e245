"""Screenshots of the main pages for README, taken from a real `make run` in Debian's chromium.

    .venv/bin/python docs/screenshots.py      # writes docs/screenshots/*.png

Starts `make run` in a temporary folder (its own registry, demo users and keys), walks the journey as the
demo developer (a failing check with the reader key, a report, a passing check with the writer key, the
run picker, the registration, Done), the demo support engineer (the investigation, its verdict) and the
demo manager (the dashboard), and saves one PNG per page (1280 px wide). Run it again after a change a
person would see."""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hokusai_portal.settings")

import django  # noqa: E402

from hokusai_portal import runtime  # noqa: E402

runtime.prepare()
django.setup()

from devstack.server import free_port  # noqa: E402
from tests.portal_processes import ProcessSet  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    port, registry_port = free_port(), free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "HOKUSAI_REGISTRY_URL")
    }
    env.update(PORTAL_PORT=str(port), REGISTRY_PORT=str(registry_port))
    with tempfile.TemporaryDirectory() as tmp:
        portal = ProcessSet(Path(tmp), ["make", "run"], env)
        try:
            portal.wait_for_log("Ready in", timeout=300)
            demo = json.loads((portal.var_dir / "demo-credentials.json").read_text())
            base = f"http://127.0.0.1:{port}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

                def person(username):
                    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                    page.goto(f"{base}/accounts/login/")
                    page.get_by_label("Username or email").fill(username)
                    page.get_by_label("Password").fill(demo["users"][username]["password"])
                    page.get_by_role("button", name="Sign In", exact=True).click()
                    page.wait_for_load_state("networkidle")
                    if "totp_secret" in demo["users"][username]:  # staff: the authenticator's current code
                        from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

                        secret = demo["users"][username]["totp_secret"]
                        page.get_by_label("Code").fill(format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
                        page.get_by_role("button", name="Sign In", exact=True).click()
                        page.wait_for_load_state("networkidle")
                    return page

                def shot(page, name):
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                    print(f"docs/screenshots/{name}.png")

                developer = person("developer")
                developer.goto(f"{base}/onboarding/key/")
                developer.get_by_label("API key").fill(demo["keys"]["reader"])
                developer.get_by_role("button", name="Save key").click()
                developer.get_by_role("button", name="Run connectivity check").click()
                developer.locator('.run[data-status="failed"]').wait_for()
                shot(developer, "check-failed")
                developer.get_by_label("Anything to add (optional)").fill("Blocked on registering since this morning.")
                developer.get_by_role("button", name="Send the report to support").click()
                developer.get_by_test_id("my-report").wait_for()
                report_url = developer.url
                developer.goto(f"{base}/onboarding/key/")
                developer.get_by_label("API key").fill(demo["keys"]["writer"])
                developer.get_by_role("button", name="Save key").click()
                developer.get_by_role("button", name="Run connectivity check").click()
                developer.locator('.run[data-status="passed"]').wait_for()
                shot(developer, "check-passed")
                developer.get_by_role("link", name="Continue to registration").click()
                developer.get_by_role("button", name="Use accuracy = 0.93").click()
                developer.get_by_label("Model name", exact=True).fill("LSCOR_Test_Model")
                developer.get_by_label("Token id").fill("LSCOR")
                developer.get_by_label("Baseline value").fill("0.92")
                shot(developer, "registration")
                developer.get_by_role("button", name="Check and register").click()
                developer.locator('.run[data-status="passed"]').wait_for(timeout=90_000)
                developer.get_by_role("link", name="Done: what next").click()
                shot(developer, "done")

                support = person("support")
                support.goto(report_url)
                support.get_by_label("Verdict").select_option("verified")
                support.get_by_label("Reason").fill("Reader keys cannot write: by design.")
                support.get_by_label("Root cause").fill("The onboarding email sends reader keys.")
                support.get_by_role("button", name="Save the verdict").click()
                support.locator('.finding[data-status="verified"]').wait_for()
                support.get_by_label("Comment").fill("Ask for a writer key in your account settings.")
                support.get_by_role("button", name="Reply to reporter").click()
                support.wait_for_load_state("networkidle")
                shot(support, "investigation")

                manager = person("manager")
                shot(manager, "dashboard")
                browser.close()
        finally:
            portal.stop()
            portal.kill_everything()


if __name__ == "__main__":
    main()
