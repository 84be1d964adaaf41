"""The real-model tier (see conftest.py). A package, so its conftest is ``real.conftest``
and ``from conftest import code`` in the tests above finds tests/conftest.py."""
