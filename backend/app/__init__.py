# The one version: the OpenAPI schema's info.version reads it; pyproject.toml, uv.lock and
# CHANGELOG.md's latest entry must say the same (backend/tests/test_version.py).
__version__ = "0.3.0"
