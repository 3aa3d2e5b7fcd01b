"""bridgeca's verification core: RFC 5280 path building and validation.

Pure: no database, no network, no global state. See ARCHITECTURE.md.

The hot modules may be compiled to C by mypyc (``make compile``; the
Makefile's COMPILED). A compiled module is imported in place of its source,
so one older than its source would run code that is no longer there: that
is refused here, before any of them is imported.
"""
from pathlib import Path as _Path


def _refuse_stale_compiled() -> None:
    # make compile touches pki/.compiled after mypyc; mypyc leaves a module's
    # own .so alone when only the shared library changed, so the stamp, not
    # the .so, says when the sources were compiled.
    here = _Path(__file__).parent
    stamp = here / ".compiled"
    built = stamp.stat().st_mtime if stamp.exists() else 0.0
    for module in here.glob("*.so"):
        source = here / (module.name.split(".", 1)[0] + ".py")  # none for the shared _compiled__mypyc
        if source.exists() and source.stat().st_mtime > built:
            raise ImportError(f"pki/{source.name} changed after pki was compiled: run `make compile`, "
                              f"or `make uncompile` to run the sources")


_refuse_stale_compiled()

from .errors import InputError, ValidationError  # noqa: E402
from .verifier import VerificationResult, Verifier  # noqa: E402

__all__ = ["Verifier", "VerificationResult", "InputError", "ValidationError"]
