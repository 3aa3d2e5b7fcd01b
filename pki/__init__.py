"""bridgeca's verification core: RFC 5280 path building and validation.

Pure: no database, no network, no global state. See ARCHITECTURE.md.
"""
from .errors import InputError, ValidationError
from .verifier import VerificationResult, Verifier

__all__ = ["Verifier", "VerificationResult", "InputError", "ValidationError"]
