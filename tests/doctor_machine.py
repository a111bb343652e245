"""A developer's machine for running the environment doctor on: see tests/test_doctor.py."""

import json
import shutil
import subprocess
from pathlib import Path

KEY = "hk_test_" + "A1b2C3d4" * 4  # shaped like a key, known to no registry
OTHER_KEY = "hk_live_" + "Z9y8X7w6" * 4
SECRET_VARIABLES = ("KEY", "TOKEN", "PASSWORD", "SECRET")


class Machine:
    """A developer's machine: a home folder, a working folder, a site folder of installed distributions
    (put on the path of the bare virtualenv's Python) and environment variables."""

    def __init__(self, root: Path, python: str, script: Path):
        self.home, self.cwd, self.site = root / "home", root / "work", root / "site"
        for folder in (self.home, self.cwd, self.site):
            folder.mkdir(parents=True, exist_ok=True)
        self.python, self.script = python, script
        # The virtualenv is active: its pip comes first on PATH (the bare one has none: this stands in).
        bin_folder = root / "venv-bin"
        bin_folder.mkdir()
        for command in ("pip", "pip3"):
            (bin_folder / command).write_text(f"#!{python}\nimport sys\n")
            (bin_folder / command).chmod(0o755)
        self.env = {"PATH": f"{bin_folder}:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8"}
        self.secrets: list[str] = []

    def install(self, name, version, *, requires=(), requires_python=None, modules=None, direct_url=None):
        """A minimal installed distribution: metadata, a RECORD of its files, and its modules' code."""
        modules = {name.replace("-", "_"): ""} if modules is None else modules
        info = self.site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        if requires_python:
            metadata.append(f"Requires-Python: {requires_python}")
        metadata += [f"Requires-Dist: {line}" for line in requires]
        (info / "METADATA").write_text("\n".join(metadata) + "\n")
        files = []
        for module, code in modules.items():
            package = self.site / module
            package.mkdir(exist_ok=True)
            (package / "__init__.py").write_text(code)
            files.append(f"{module}/__init__.py,,")
        if direct_url is not None:
            (info / "direct_url.json").write_text(json.dumps(direct_url))
            files.append(f"{info.name}/direct_url.json,,")
        (info / "RECORD").write_text("\n".join(files + [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]) + "\n")

    def install_sdk(self, *, commit="0123456789abcdef0123456789abcdef01234567", requires_python=">=3.8", extra=None):
        extra = extra or {
            "mlflow": ">=3.9.0",
            "metaflow": "",
            "redis": "",
            "numpy": "",
            "pandas": "",
            "scikit-learn": "",
        }
        requires = ["pydantic>=2.0", "httpx", "requests", "click"]
        requires += [f'{name}{spec}; extra == "ml"' for name, spec in extra.items()]
        self.install(
            "hokusai-ml-platform",
            "1.0.0",
            requires=requires,
            requires_python=requires_python,
            modules={"hokusai": "class MissingMLExtraError(ImportError):\n    pass\n"},
            direct_url={
                "url": "https://token:x-oauth@github.com/hokusai/hokusai-data-pipeline.git?ref=main",
                "vcs_info": {"vcs": "git", "commit_id": commit},
            },
        )
        for name in ("pydantic", "httpx", "requests", "click"):
            self.install(name, "2.5.0" if name == "pydantic" else "1.0.0")

    def install_ml(self, mlflow="3.9.0", mlflow_code=""):
        self.install("mlflow", mlflow, modules={"mlflow": mlflow_code})
        for name in ("metaflow", "redis", "numpy", "pandas"):
            self.install(name, "1.0.0")
        self.install("scikit-learn", "1.5.0", modules={"sklearn": ""})

    def install_http_stack(self):
        """The real requests (and urllib3, certifi, idna, charset_normalizer) in place of the stand-in, linked from
        the test environment's site-packages: the doctor asks this Python's requests how it would connect."""
        import requests  # noqa: PLC0415 - the test environment's

        source = Path(requests.__file__).parent.parent
        for stale in ("requests", "requests-1.0.0.dist-info"):
            if (self.site / stale).exists():
                shutil.rmtree(self.site / stale)
        for name in ("requests", "urllib3", "certifi", "idna", "charset_normalizer"):
            (self.site / name).symlink_to(source / name)
            for info in source.glob(f"{name}-*.dist-info"):
                (self.site / info.name).symlink_to(info)

    def healthy(self):
        """Everything a developer needs, so that one change shows one cause."""
        self.install_sdk()
        self.install_ml()
        self.set(HOKUSAI_API_KEY=KEY)

    def set(self, **variables):
        for name, value in variables.items():
            self.env[name] = value
            if any(word in name for word in SECRET_VARIABLES):
                self.secrets.append(value)

    def write(self, relative: str, text: str, *, secret: str | None = None) -> Path:
        path = self.home.parent / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if secret:
            self.secrets.append(secret)
        return path

    def run(self, *args: str, expect_rc=None):
        env = dict(self.env, PYTHONPATH=str(self.site))
        result = subprocess.run(
            [self.python, str(self.script), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.cwd,
            timeout=120,
        )
        output = result.stdout + result.stderr
        for secret in self.secrets:  # no key, token or password it was given ever appears in what it printed
            assert secret not in output, "the doctor printed a secret"
            body = secret.split("_", 2)[-1]
            if len(body) >= 12:
                assert body not in output, "the doctor printed a key's body"
        if expect_rc is not None:
            assert result.returncode == expect_rc, output
        return result

    def report(self, *args: str) -> dict:
        result = self.run("--json", *args)
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout)
