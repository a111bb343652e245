"""Onboarding writes: save/forget a key, start and execute checks, expire lost runs."""

import logging
import re
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.selectors import user_email_verified
from hokusai_portal import crypto
from hokusai_portal.faults import is_storage_fault
from hokusai_portal.ratelimit import Limited, SlidingWindow
from organizations.selectors import membership_of

from . import lifecycle, selectors
from .checks import ConnectivityCheck, StepResult
from .diagnosis import Diagnosis, StepStatus, diagnose_exception, diagnose_response
from .keys import NormalisedKey, key_normalise
from .models import ApiKey, CheckRun, DeveloperProgress, OrganizationApiKey, Registration
from .registration import RegistrationCheck
from .registration_input import RegistrationRequest
from .registry_client import Deadline, RegistryClient, json_body, version_tags
from .signals import check_run_finished

logger = logging.getLogger(__name__)
T = TypeVar("T")

READ_BACK_SECONDS = 6
KEY_SUBMISSIONS_PER_WINDOW = 10
KEY_SUBMISSION_WINDOW_SECONDS = 600
KEY_SUBMISSIONS = SlidingWindow("key-submissions", KEY_SUBMISSIONS_PER_WINDOW, KEY_SUBMISSION_WINDOW_SECONDS)


class KeySubmissionRateLimited(Exception):
    def __init__(self, limited: Limited):
        super().__init__(
            f"Too many key submissions ({KEY_SUBMISSIONS_PER_WINDOW} in {KEY_SUBMISSION_WINDOW_SECONDS // 60} minutes). "
            f"Try again in {limited.wait}."
        )
        self.retry_after = limited.retry_after


class EmailNotVerified(Exception):
    """The account's email address is not verified yet: the portal stores no key for it until it is."""

    def __str__(self) -> str:
        return (
            "Verify your email address first: open the link we sent you (or send it again from your account "
            "page). Until then the portal stores no API key for you."
        )


class NoApiKey(Exception):
    pass


def _key_submission_allowed(user: AbstractBaseUser) -> None:
    """A sliding window per user: every submission counts, valid or not (a key guesser's tries too)."""
    try:
        KEY_SUBMISSIONS.check(str(user.pk))
    except Limited as limited:
        raise KeySubmissionRateLimited(limited) from None
    KEY_SUBMISSIONS.hit(str(user.pk))


def api_key_save(*, user: AbstractBaseUser, raw_key: str) -> tuple[ApiKey, NormalisedKey]:
    """Validate and store the key encrypted (always with the current first encryption key).

    Raises EmailNotVerified, KeySubmissionRateLimited or keys.KeyFormatError; nothing is saved then."""
    if not user_email_verified(user=user):
        raise EmailNotVerified
    _key_submission_allowed(user)
    normalised = key_normalise(raw_key)
    api_key, _ = ApiKey.objects.update_or_create(
        user=user,
        defaults={
            "ciphertext": crypto.encrypt(normalised.key),
            "masked": normalised.masked,
            "key_tier": normalised.key_tier,
        },
    )
    progress_mark(user=user, milestone="key_saved_at")
    logger.info("api key saved user=%s key=%s", user.pk, normalised.masked)
    return api_key, normalised


def api_key_forget(*, user: AbstractBaseUser) -> bool:
    deleted, _ = ApiKey.objects.filter(user=user).delete()
    logger.info("api key forgotten user=%s deleted=%s", user.pk, bool(deleted))
    return bool(deleted)


class NotOrganizationOwner(Exception):
    def __str__(self) -> str:
        return "Only the organization's owner can save or forget its key."


def _owned_organization(user: AbstractBaseUser):
    membership = membership_of(user=user)
    if membership is None or not membership.is_owner:
        raise NotOrganizationOwner
    return membership.organization


def organization_key_save(*, user: AbstractBaseUser, raw_key: str) -> tuple[OrganizationApiKey, NormalisedKey]:
    """The owner saves (or replaces) the organization's key: the same rules as a personal key (a verified
    address, the same submission window, the same validation), stored encrypted."""
    organization = _owned_organization(user)
    if not user_email_verified(user=user):
        raise EmailNotVerified
    _key_submission_allowed(user)
    normalised = key_normalise(raw_key)
    api_key, _ = OrganizationApiKey.objects.update_or_create(
        organization=organization,
        defaults={
            "ciphertext": crypto.encrypt(normalised.key),
            "masked": normalised.masked,
            "key_tier": normalised.key_tier,
            "saved_by": user,
        },
    )
    progress_mark(user=user, milestone="key_saved_at")  # the owner saved a key: the funnel's and the organization's
    logger.info("organization key saved organization=%s user=%s key=%s", organization.pk, user.pk, normalised.masked)
    return api_key, normalised


def organization_key_forget(*, user: AbstractBaseUser) -> bool:
    organization = _owned_organization(user)
    deleted, _ = OrganizationApiKey.objects.filter(organization=organization).delete()
    logger.info("organization key forgotten organization=%s user=%s", organization.pk, user.pk)
    return bool(deleted)


def api_key_reveal(api_key: ApiKey | OrganizationApiKey) -> str:
    """The plain key, for the registry call only. Re-encrypts an old ciphertext after a key rotation."""
    plain = crypto.decrypt(api_key.ciphertext)
    if not crypto.is_current(api_key.ciphertext):
        type(api_key).objects.filter(pk=api_key.pk).update(ciphertext=crypto.encrypt(plain))
    return plain


def _saved_key(user: AbstractBaseUser) -> ApiKey | OrganizationApiKey:
    api_key = selectors.run_key_for(user=user)
    if api_key is None:
        raise NoApiKey("Save your API key first.")
    return api_key


def _key_of_run(run: CheckRun) -> ApiKey | OrganizationApiKey | None:
    """The key a run was started with, as saved now: the organization's while its runner is still a member
    of it, else the runner's own (None when forgotten since: the first step says so)."""
    if run.key_source == CheckRun.KeySource.ORGANIZATION:
        return OrganizationApiKey.objects.filter(
            organization_id=run.organization_id, organization__memberships__user_id=run.user_id
        ).first()
    if CheckRun.user.is_cached(run) and type(run.user).api_key.is_cached(run.user):  # read with the run by the claim
        return getattr(run.user, "api_key", None)
    return ApiKey.objects.filter(user_id=run.user_id).first()


def _check_run_new(
    *, user: AbstractBaseUser, kind: str, api_key: ApiKey | OrganizationApiKey, model_name: str
) -> CheckRun:
    """A queued run against the configured registry; its queue grace starts now (see lifecycle). It records
    who ran it, in which organization, and which key (masked, and whose)."""
    membership = membership_of(user=user)
    return CheckRun.objects.create(
        user=user,
        organization=membership.organization if membership else None,
        key_source=CheckRun.KeySource.ORGANIZATION
        if isinstance(api_key, OrganizationApiKey)
        else CheckRun.KeySource.PERSONAL,
        registry_url=settings.HOKUSAI_REGISTRY_URL,
        kind=kind,
        key_masked=api_key.masked,
        model_name=model_name.strip(),
        deadline_at=timezone.now() + timedelta(seconds=lifecycle.QUEUE_GRACE_SECONDS),
    )


def connectivity_check_start(*, user: AbstractBaseUser, model_name: str = "") -> CheckRun:
    api_key = _saved_key(user)
    run = _check_run_new(user=user, kind=CheckRun.Kind.CONNECTIVITY, api_key=api_key, model_name=model_name)
    transaction.on_commit(lambda: check_run_enqueue(run_id=run.pk, new=True))
    return run


_brokers: dict = {}  # broker URL -> the kombu Connection its producer pool is keyed by
ENQUEUE_TIMEOUT_SECONDS = 5  # waiting for a free producer of the pool


def check_run_enqueue(*, run_id: int, new: bool = False) -> bool:
    """Queue the task (its only argument is the run id). A broker that is down is recorded, not raised; an
    error recorded earlier is cleared once it is queued (a `new` run has none to clear)."""
    from kombu import pools

    from hokusai_portal.celery import app

    from .tasks import check_run_task

    try:
        # A pooled producer of the configured broker (kombu's pools, one per broker URL: a test or a
        # changed setting gets its own): a connection and its queue declaration are made once per
        # process, not at every submit (~5 % of the web's CPU per check, measured; issue 27).
        url = settings.CELERY_BROKER_URL
        broker = _brokers.get(url)
        if broker is None:
            broker = _brokers.setdefault(url, app.connection_for_write(url))
        with pools.producers[broker].acquire(block=True, timeout=ENQUEUE_TIMEOUT_SECONDS) as producer:
            check_run_task.apply_async(args=[run_id], producer=producer, retry=False)
    except Exception as exc:  # kombu/redis/amqp errors differ by transport; all mean "not queued"
        logger.warning("check run %s not queued: %s", run_id, type(exc).__name__)
        CheckRun.objects.filter(pk=run_id).update(enqueue_error=f"{type(exc).__name__}"[:200])
        return False
    if not new:
        CheckRun.objects.filter(pk=run_id).exclude(enqueue_error="").update(enqueue_error="")
    return True


def check_run_retry(*, run: CheckRun) -> CheckRun:
    """Start a new run like `run` (the old one stays in history)."""
    if run.kind == CheckRun.Kind.REGISTRATION:
        return registration_start(user=run.user, request=selectors.registration_request_of(run.registration)).check_run
    return connectivity_check_start(user=run.user, model_name=run.model_name)


def registration_start(*, user: AbstractBaseUser, request: RegistrationRequest) -> Registration:
    """Queue a registration. The same request again (double click, browser retry, concurrent submit)
    returns the registration already under way or done, never a second one."""
    api_key = _saved_key(user)
    idempotency_key = request.idempotency_key(user.pk)
    existing = Registration.objects.filter(idempotency_key=idempotency_key, failed=False).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            run = _check_run_new(
                user=user, kind=CheckRun.Kind.REGISTRATION, api_key=api_key, model_name=request.model_name
            )
            registration = Registration.objects.create(
                user=user, check_run=run, idempotency_key=idempotency_key, **request.stored_fields()
            )
    except IntegrityError:  # a concurrent identical submit won the race
        return Registration.objects.get(idempotency_key=idempotency_key, failed=False)
    transaction.on_commit(lambda: check_run_enqueue(run_id=run.pk, new=True))
    return registration


def check_run_execute(*, run_id: int) -> CheckRun | None:
    """Run the steps of a queued run, saving each as it finishes. A run another worker holds, or one
    that is over (a duplicate message), is left alone; one whose worker died is taken over. The worker's
    heartbeat keeps the run's lease from before the claim until the verdict."""
    with lifecycle.lease_kept(run_id):
        return _check_run_execute(run_id=run_id)


def _check_run_execute(*, run_id: int) -> CheckRun | None:
    run = lifecycle.check_run_claim(
        run_id=run_id,
        worker=lifecycle.worker_name(),
        deadline_seconds={
            CheckRun.Kind.REGISTRATION: RegistrationCheck.DEADLINE_SECONDS,
            CheckRun.Kind.CONNECTIVITY: ConnectivityCheck.DEADLINE_SECONDS,
        },
    )
    if run is None:
        return None
    api_key = _key_of_run(run)
    plain = api_key_reveal(api_key) if api_key else ""  # forgotten since submit: the first step says so
    if run.kind == CheckRun.Kind.REGISTRATION:
        registration = run.registration
        check = RegistrationCheck(
            run.registry_url,
            plain,
            selectors.registration_request_of(registration),
            idempotency_key=registration.idempotency_key,
        )
    else:
        check = ConnectivityCheck(run.registry_url, plain, model_name=run.model_name)
    positions = iter(range(1, 100))

    def save_step(result: StepResult) -> None:
        # Raises Superseded when another attempt owns the run now.
        lifecycle.check_step_save(run=run, position=next(positions), fields=result.as_dict())

    try:
        results = check.run(on_step=save_step)
    except lifecycle.Superseded:
        logger.warning("check run %s attempt %s superseded; its result is dropped", run.pk, run.attempt)
        return None
    except Exception as exc:
        if not is_storage_fault(exc):
            raise
        # A step could not be saved: say so in the run's cause if the storage still takes that one update.
        logger.error("check run %s: storage refused a write (%s)", run.pk, type(exc).__name__)
        try:
            lifecycle.check_run_finish(run=run, status=CheckRun.Status.FAILED, cause="STORAGE_UNAVAILABLE")
        except Exception as again:
            logger.error("check run %s: its cause could not be saved either (%s)", run.pk, type(again).__name__)
        return None
    failure = next((r for r in results if r.status == StepStatus.FAIL), None)
    status = CheckRun.Status.FAILED if failure else CheckRun.Status.PASSED
    cause = failure.cause if failure else "OK"
    with transaction.atomic() if run.kind == CheckRun.Kind.REGISTRATION else nullcontext():
        finished = lifecycle.check_run_finish(run=run, status=status, cause=cause)
        if finished and run.kind == CheckRun.Kind.REGISTRATION:
            Registration.objects.filter(check_run=run).update(
                failed=failure is not None,
                version=check.version or "",
                source=check.source or "",
                mlflow_run_id=check.run_id or "",
                model_id=check.model_id or "",
                tags=results[-1].evidence.get("tags", {}) if failure is None else {},
            )
    if not finished or run.kind == CheckRun.Kind.REGISTRATION:
        # The sweeper's verdict won (or a newer attempt's), or the registration's row changed: read them.
        run.refresh_from_db()
    if run.status == CheckRun.Status.PASSED:
        milestone = "registered_at" if run.kind == CheckRun.Kind.REGISTRATION else "connectivity_passed_at"
        progress_mark(user=run.user, milestone=milestone)
    logger.info("check run %s (%s) finished status=%s cause=%s", run.pk, run.kind, run.status, run.cause)
    if finished:
        check_run_finished.send(sender=CheckRun, run=run)  # webhooks: registration completed, check failed
    return run


def progress_mark(*, user: AbstractBaseUser, milestone: str, at=None) -> None:
    """Record the first time `user` reached `milestone` (later times never overwrite it)."""
    at = at or timezone.now()
    progress = getattr(user, "onboarding_progress", None)  # loaded with the user where it is (a check's run)
    if progress is not None and getattr(progress, milestone) is not None:
        return  # reached before: nothing to write (a developer's every later check)
    if progress is None:
        progress, _ = DeveloperProgress.objects.get_or_create(user=user, defaults={"signed_up_at": user.date_joined})
    DeveloperProgress.objects.filter(pk=progress.pk, **{f"{milestone}__isnull": True}).update(**{milestone: at})


@dataclass
class VersionReadBack:
    """A registered version as the registry answers now, read with the developer's own key."""

    status: str = ""
    source: str = ""
    run_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    problem: Diagnosis | None = None  # why it could not be read (no key, registry down, key rejected...)


NO_SAVED_KEY = Diagnosis("fail", "", "No API key is saved in the portal.", "Save your key first.", {})


class _ReadRefused(Exception):
    """The registry answered a read with a failure; `diagnosis` says which."""

    def __init__(self, diagnosis: Diagnosis):
        super().__init__(diagnosis.cause)
        self.diagnosis = diagnosis


def _answer(response) -> dict:
    """The body of a successful read; a failure raises _ReadRefused with its diagnosis."""
    if problem := diagnose_response(response):
        raise _ReadRefused(problem)
    return json_body(response)


def _read_with_saved_key(
    api_key: ApiKey | OrganizationApiKey | None, registry_url: str, read: Callable[[RegistryClient], T]
):
    """(what `read` returns, None), or (None, why not): no saved key, a refused read, a network failure.
    A page's live read of the registry with the developer's (or organization's) key: short timeouts, never a 500."""
    if api_key is None:
        return None, NO_SAVED_KEY
    client = RegistryClient(registry_url, api_key_reveal(api_key), deadline=Deadline(READ_BACK_SECONDS))
    try:
        return read(client), None
    except _ReadRefused as refused:
        return None, refused.diagnosis
    except Exception as exc:  # the network's failures, named by their cause
        return None, diagnose_exception(exc)
    finally:
        client.close()


def registered_version_read(*, registration: Registration) -> VersionReadBack:
    """Read the version back live (the registry UI cannot take an API key from a browser): status,
    source and tags, through the one registry client with the owner's saved key."""

    def read(client: RegistryClient) -> VersionReadBack:
        version = _answer(client.get_model_version(registration.model_name, registration.version)).get(
            "model_version", {}
        )
        return VersionReadBack(
            status=str(version.get("status", "")),
            source=str(version.get("source", "")),
            run_id=str(version.get("run_id") or ""),
            tags=version_tags(version),
        )

    found, problem = _read_with_saved_key(
        _key_of_run(registration.check_run), registration.check_run.registry_url, read
    )
    return found or VersionReadBack(problem=problem)


RUNS_PER_PICKER_PAGE = 10
PICKER_QUERY = re.compile(r"[^A-Za-z0-9 _.\-]")


@dataclass
class PickableRun:
    run_id: str
    run_name: str
    experiment: str
    ended_at: datetime | None
    metrics: list[tuple[str, float]]
    model_ids: list[str]

    @property
    def model_uri(self) -> str:
        """What to register: the run's logged model when it has one (MLflow 3), else its artifact path."""
        return f"models:/{self.model_ids[0]}" if self.model_ids else f"runs:/{self.run_id}/model"


@dataclass
class RunPickerPage:
    runs: list[PickableRun] = field(default_factory=list)
    next_token: str = ""
    query: str = ""
    problem: Diagnosis | None = None


def run_picker_page(*, user: AbstractBaseUser, query: str = "", page_token: str = "") -> RunPickerPage:
    """The finished runs the developer's saved key can see, newest first, searched by run name or id:
    read per request through the one registry client (nothing is copied into the portal)."""
    query = PICKER_QUERY.sub("", query or "").strip()[:100]

    def read(client: RegistryClient) -> RunPickerPage:
        page = RunPickerPage(query=query)
        experiments = {
            e.get("experiment_id"): e.get("name", "")
            for e in _answer(client.search_experiments(max_results=100)).get("experiments", [])
            if isinstance(e, dict)
        }
        if not experiments:
            return page
        condition = "attributes.status = 'FINISHED'"
        if re.fullmatch(r"[0-9a-f]{32}", query):
            condition += f" and attributes.run_id = '{query}'"
        elif query:
            condition += f" and attributes.run_name LIKE '%{query}%'"
        body = _answer(
            client.search_runs(
                experiment_ids=list(experiments),
                filter=condition,
                max_results=RUNS_PER_PICKER_PAGE,
                page_token=(page_token or "")[:2000],
            )
        )
        page.next_token = str(body.get("next_page_token") or "")
        for run in body.get("runs", []):
            info, data = run.get("info", {}), run.get("data", {})
            ended = info.get("end_time")
            page.runs.append(
                PickableRun(
                    run_id=str(info.get("run_id", "")),
                    run_name=str(info.get("run_name", "")),
                    experiment=experiments.get(info.get("experiment_id"), ""),
                    ended_at=datetime.fromtimestamp(ended / 1000, tz=UTC) if isinstance(ended, int) else None,
                    metrics=sorted((m.get("key", ""), m.get("value")) for m in data.get("metrics", [])),
                    model_ids=[
                        o.get("model_id") for o in run.get("outputs", {}).get("model_outputs", []) if o.get("model_id")
                    ],
                )
            )
        return page

    found, problem = _read_with_saved_key(selectors.run_key_for(user=user), settings.HOKUSAI_REGISTRY_URL, read)
    return found or RunPickerPage(query=query, problem=problem)
