"""The roles a token carries: one place, read by the token store, the CLI's
``--role`` choices and the demo (a module without imports: the CLI reads it
before anything heavy is loaded)."""

ROLES = ("admin", "issuer", "platform")
# A console session is a token of its own role ("session-admin"), so that its
# value, lifted from the cookie, is no admin token on the API: two-person
# control counts administrators by token, and a copied session must not be a
# second one.
SESSION_ROLES = tuple("session-" + role for role in ("admin", "platform"))
