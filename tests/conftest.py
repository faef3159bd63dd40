"""The root conftest: registers the shared fixtures (``tests/helpers/fixtures.py``)."""

pytest_plugins = ["helpers.fixtures"]
