"""The bridge certification authority.

Roles kept apart as in boulder: ``registration`` decides (enrollment checks,
policy mappings, states), ``authority`` signs (the only user of the
``signer``), ``store`` persists (the only code that touches the database,
with the hash-chained ``audit`` log). ``service.BridgeCA`` is the facade the
CLI and the HTTP layer call; every failure leaves it as
``errors.BridgeError`` with ``code``, ``message`` and a ``kind`` (api/problems.py maps kinds to HTTP statuses).

    ca = BridgeCA.open(home)                        # or BridgeCA.init(home, ...)
    ca.enroll(name=, jurisdiction=, root_certificate=, policy_mappings=[{bridge_policy, member_policy}],
              permitted_subtrees=, excluded_subtrees=, path_length=, actor=)   -> issuer dict, "pending"
    ca.approve(id, actor=)                          -> issuer dict + "cross_certificate" (PEM), "serial" (hex)
    ca.reject(id, reason=, actor=) / ca.issuer(id) / ca.issuers() / ca.expire_due()
    ca.upload_reverse(id, certificate, actor=)      -> {"id", "sha256", "certificate"}
    ca.revoke(serial_hex_or_int, reason, actor=)    -> {"serial", "status", "reason", "crl_number"}
    ca.current_crl() -> DER    ca.ocsp_response(request_der) -> DER
    ca.certificate_pem() / ca.certificate_der()
    ca.issued_by_bridge_p7c() / ca.issued_to_bridge_p7c() -> DER certs-only CMS
    ca.create_token(role) -> token    ca.authenticate(token) -> role | None
    ca.verify_audit() -> AuditFinding(intact, entries, message)
"""
