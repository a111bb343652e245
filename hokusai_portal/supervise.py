"""`python -m hokusai_portal.supervise development|production`: every process of the portal under
supervisord (a kept supervisor), one command, one Ctrl-C.

- A crashed process is restarted and the log says so ("exited: worker (terminated by SIGKILL; not
  expected)", "spawned: 'worker'"); one that keeps dying at start-up is retried with a growing back-off.
  The others keep serving meanwhile.
- Ctrl-C (or SIGTERM) stops them in reverse start order, each fully before the next: the web first
  (no new checks), then beat, then the worker (it finishes running checks, up to 30 s), then the
  registry last, so a check is never cut off by its own registry going away.
- Every process dies with supervisord, even a SIGKILLed one (hokusai_portal/lifeline.py).

development (`make run`): the devstack registry, one worker (threads), beat, gunicorn on 127.0.0.1,
and `demo_setup --wait`, which seeds the running registry and prints the banner once /healthz is 200.

The web is gunicorn with uvicorn workers on hokusai_portal.asgi (WEB_SERVER=wsgi: the sync WSGI path).

production (`make production`): gunicorn with WEB_CONCURRENCY workers on PORTAL_BIND, WORKER_PROCESSES
Celery worker processes of WORKER_THREADS threads each, and beat; the registry is HOKUSAI_REGISTRY_URL."""

import getpass
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A worker's warm shutdown waits for its running checks (a registration may take up to a minute).
WORKER_GRACE_SECONDS = 30
# gunicorn's graceful stop (in-flight requests, a long poll); the supervisor waits longer before its SIGKILL,
# or a stop with a browser's idle keep-alive open ended with the web killed.
WEB_GRACE_SECONDS = 10
WEB_STOP_WAIT_SECONDS = WEB_GRACE_SECONDS + 5


def _env(name: str, default: str) -> str:
    return os.getenv(name, "").strip() or default


# -- web server (issue 27): ASGI by default, WEB_SERVER=wsgi for the sync path --------------------------
def web_server() -> list[str]:
    """gunicorn's application and worker class. asgi (default): uvicorn workers; a long-polled check page
    awaits a notification and holds no thread (`--threads` is then unused). wsgi: gthread workers, each
    long poll holding a thread (one of CHECK_LONG_POLL_SLOTS), for comparison."""
    server = _env("WEB_SERVER", "asgi")
    if server == "wsgi":
        return ["hokusai_portal.wsgi"]
    if server != "asgi":
        raise SystemExit(f"WEB_SERVER must be asgi or wsgi (not {server!r})")
    return ["hokusai_portal.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker"]


# -- end web server --------------------------------------------------------------------------------------


def programs(mode: str, var_dir: Path) -> list[dict]:
    """The processes of `mode`, in start order (stopped in reverse)."""
    python = sys.executable
    bin_dir = Path(python).parent
    celery = [str(bin_dir / "celery"), "-A", "hokusai_portal"]
    worker_threads = _env("WORKER_THREADS", "8")
    # Beat at WARNING: at INFO it logs every send, and the run sweep is sent every second.
    beat = [*celery, "beat", "--loglevel", "WARNING", "--schedule", str(var_dir / "celerybeat-schedule")]
    gunicorn = [
        str(bin_dir / "gunicorn"),
        *web_server(),
        "--access-logfile",
        "-",
        "--graceful-timeout",
        str(WEB_GRACE_SECONDS),
        "--config",
        "python:hokusai_portal.gunicorn_conf",  # server hooks: metrics clean-up on a worker's exit
    ]
    if mode == "development":
        port = _env("PORTAL_PORT", "8000")
        return [
            {
                "name": "registry",
                "command": [
                    python,
                    "-m",
                    "devstack",
                    "serve",
                    "--port",
                    _env("REGISTRY_PORT", "5000"),
                    "--data",
                    str(var_dir / "devstack"),
                    "--workers",
                    "2",
                ],
                "stopwaitsecs": 10,
            },
            {
                "name": "worker",
                "command": [
                    *celery,
                    "worker",
                    "--pool",
                    "threads",
                    "--concurrency",
                    worker_threads,
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                ],
                "stopwaitsecs": WORKER_GRACE_SECONDS,
            },
            {"name": "beat", "command": beat},
            {
                "name": "web",
                "command": [*gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"],
                "stopwaitsecs": WEB_STOP_WAIT_SECONDS,
            },
            {
                "name": "ready",
                "command": [python, "manage.py", "demo_setup", "--wait"],
                "autorestart": "false",
                "startsecs": 0,
                "startretries": 0,
            },
        ]
    if mode == "production":
        return [
            {
                "name": "worker",
                "command": [
                    *celery,
                    "worker",
                    "--pool",
                    "threads",
                    "--concurrency",
                    worker_threads,
                    "--loglevel",
                    "INFO",
                    # No Celery worker events: the portal's own heartbeat (WorkerHeartbeat) says which workers
                    # live, for /healthz and the sweep. With them each worker sent an event every 2 s and took in
                    # every other worker's (gossip), and synced at start (mingle): ~30 % of an idle worker's CPU.
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "--hostname",
                    "worker%(process_num)s@%%h",
                ],
                "numprocs": int(_env("WORKER_PROCESSES", "2")),
                "process_name": "worker-%(process_num)s",
                "stopwaitsecs": WORKER_GRACE_SECONDS,
            },
            {"name": "beat", "command": beat},
            {
                "name": "web",
                "command": [
                    *gunicorn,
                    "--bind",
                    _env("PORTAL_BIND", "0.0.0.0:8000"),
                    "--workers",
                    _env("WEB_CONCURRENCY", "2"),
                    "--threads",
                    _env("WEB_THREADS", "4"),
                ],
                "stopwaitsecs": WEB_STOP_WAIT_SECONDS,
            },
        ]
    raise SystemExit(f"usage: python -m hokusai_portal.supervise development|production (not {mode!r})")


def _quote(argument: str) -> str:
    # supervisord splits commands like a shell and expands %(...)s; keep our own % signs literal.
    if any(c in argument for c in " \"'"):
        argument = '"' + argument.replace('"', '\\"') + '"'
    return argument


def metrics_dir(var_dir: Path) -> Path:
    """prometheus-client's multiprocess folder, shared by every process of the set (PROMETHEUS_MULTIPROC_DIR)."""
    return Path(_env("PROMETHEUS_MULTIPROC_DIR", str(var_dir / "prometheus")))


def metrics_dir_reset(folder: Path) -> None:
    """Emptied at each start, as prometheus-client's docs ask: a new set's counters start from zero, and no
    file of a process that no longer exists is added up."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def config(mode: str, var_dir: Path) -> str:
    folder = var_dir / "supervisor"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={folder / 'supervisord.log'}",
        "logfile_maxbytes=5MB",
        "logfile_backups=2",
        f"pidfile={folder / 'supervisord.pid'}",
        f"childlogdir={folder}",
        "loglevel=info",
        *([f"user={getpass.getuser()}"] if os.geteuid() == 0 else []),  # as root: say so, or it warns at every start
        "",
    ]
    lifeline = [sys.executable, "-m", "hokusai_portal.lifeline"]
    for priority, program in enumerate(programs(mode, var_dir), start=1):
        # make run: each line names its process (one terminal, five processes); production: lines as written.
        prefix = ["--prefix", program["name"]] if mode == "development" else []
        command = " ".join(_quote(part) for part in [*lifeline, *prefix, *program["command"]])
        lines += [
            f"[program:{program['name']}]",
            f"command={command}",
            f"directory={ROOT}",
            f"priority={priority * 10}",
            f"numprocs={program.get('numprocs', 1)}",
            f"process_name={program.get('process_name', '%(program_name)s')}",
            f"autorestart={program.get('autorestart', 'true')}",
            f"startsecs={program.get('startsecs', 3)}",
            f"startretries={program.get('startretries', 20)}",
            f"stopwaitsecs={program.get('stopwaitsecs', 10)}",
            "stopsignal=TERM",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            f'environment=PYTHONUNBUFFERED="1",PROMETHEUS_MULTIPROC_DIR="{metrics_dir(var_dir)}",'
            'PORTAL_PROCESS="%(program_name)s"',
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "development"
    var_dir = Path(_env("PORTAL_VAR_DIR", str(ROOT / "var"))).resolve()
    path = var_dir / "supervisor" / f"{mode}.conf"
    text = config(mode, var_dir)
    path.write_text(text)
    metrics_dir_reset(metrics_dir(var_dir))
    supervisord = str(Path(sys.executable).parent / "supervisord")
    os.execv(supervisord, [supervisord, "--configuration", str(path)])


if __name__ == "__main__":
    main(sys.argv[1:])
