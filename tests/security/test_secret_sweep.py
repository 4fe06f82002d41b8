"""The secret sweep (tests/plugins/secret_sweep.py) itself: it sees every kind of record, it fails
a run whose logs hold a secret, and it never prints the secret it found."""
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from tests.plugins import secret_sweep
from tests.plugins.secret_sweep import SweepHandler, _Registry, mask

ROOT = Path(__file__).resolve().parents[2]


def private_sweep():
    """A handler with its own registry on a logger that does not propagate: what it sees never
    reaches the session's own sweep."""
    registry = _Registry()
    handler = SweepHandler(registry)
    logger = logging.getLogger("tests.secret_sweep.private")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return registry, handler, logger


def test_registered_secrets_are_found_in_messages_exceptions_extras_and_threads():
    registry, handler, logger = private_sweep()
    handler.start_test("t")
    for index, value in enumerate(["whs-sweep-msg-0001", "whs-sweep-exc-0002", "whs-sweep-extra-003",
                                   "whs-sweep-thread-04"]):
        registry.add(value, f"secret {index}")
    logger.debug("calling with %s", "whs-sweep-msg-0001")
    try:
        raise ValueError("bad whs-sweep-exc-0002")
    except ValueError:
        logger.exception("failed")
    logger.info("call", extra={"headers": {"X": "whs-sweep-extra-003"}})
    thread = threading.Thread(target=logger.warning, args=("from a thread: whs-sweep-thread-04",))
    thread.start()
    thread.join()
    handler.end_test()
    assert {leak.secret_masked for leak in handler.leaks.values()} == {
        mask(v) for v in ["whs-sweep-msg-0001", "whs-sweep-exc-0002", "whs-sweep-extra-003", "whs-sweep-thread-04"]
    }


def test_a_secret_registered_after_it_was_logged_in_the_same_test_is_found():
    registry, handler, logger = private_sweep()
    handler.start_test("t")
    logger.info("token is late-secret-value-123")
    registry.add("late-secret-value-123", "late")
    handler.end_test()
    assert [leak.kind for leak in handler.leaks.values()] == ["late"]


def test_secret_shapes_are_found_without_registration():
    registry, handler, logger = private_sweep()
    handler.start_test("t")
    logger.info("a token dal:AbCdEfGh0123456789_x, a key hitl_0123456789ab_" + "k" * 43
                + " and whsec_" + "A" * 32)
    logger.info("nothing here: dal:short, modal:dialog, hitl_0123456789ab (a public key prefix)")
    handler.end_test()
    assert sorted(leak.kind for leak in handler.leaks.values()) == [
        "API key (hitl_<12 hex>_…)", "LiveChat token (dal:…)", "callback secret (whsec_…)"
    ]


def test_short_values_are_not_tracked():
    registry = _Registry()
    registry.add("secret", "too short")
    registry.add(None, "not a string")
    assert registry.labels == {}


def test_the_masked_form_does_not_hold_the_secret():
    masked = mask("whs-acme-s3cr3t")
    assert "acme" not in masked and "s3cr3t" not in masked and masked.startswith("whs")


def test_make_integration_and_saved_models_register_their_secrets(integration):
    labels = secret_sweep._registry.labels
    assert integration.api_key in labels
    assert integration.integration.callback_secret in labels
    assert "whs-acme-s3cr3t" in labels


def test_a_run_that_logs_a_secret_fails_and_prints_it_masked(tmp_path):
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent("""
        import logging
        from tests.plugins.secret_sweep import register_secret

        def test_clean():
            logging.getLogger("bridge.clean").info("nothing to see")

        def test_leaky():
            register_secret("whs-leaky-0123456789", "sample webhook secret")
            logging.getLogger("bridge.leaky").debug("posting with secret_key=%s", "whs-leaky-0123456789")
            logging.getLogger("bridge.leaky").info("Authorization: Bearer dal:MintedTokenValue0123456789")
    """))
    result = run_pytest(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "2 passed" in output
    assert "whs-leaky-0123456789" not in output and "dal:MintedTokenValue0123456789" not in output
    assert mask("whs-leaky-0123456789") in output
    assert "test_leaky.py::test_leaky: sample webhook secret" in output
    assert "LiveChat token (dal:…)" in output
    assert "2 leaks: the run fails" in output


def test_a_clean_run_passes(tmp_path):
    (tmp_path / "test_clean.py").write_text("import logging\n\ndef test_clean():\n"
                                            "    logging.getLogger('bridge').info('fine')\n")
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 leaks" in result.stdout


def run_pytest(folder):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "hitl_project.settings_test"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.plugins.secret_sweep",
         "--rootdir", str(folder), str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )
