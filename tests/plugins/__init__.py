"""pytest plugins shared by the test suite (registered in tests/conftest.py via pytest_plugins)."""
