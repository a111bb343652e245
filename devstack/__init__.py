"""The local registry: a real MLflow 3 server behind an auth plugin that behaves like
Hokusai's API-key gateway. Used by `make run` and by the test suite."""
