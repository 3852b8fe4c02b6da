"""Local simulator of Microsoft's identity platform and Graph mail; start it with
``server.MicrosoftSim``.

Modules: ``errors`` (Entra ID and Graph error bodies), ``identity`` (OpenID configuration,
instance discovery, the client-credentials token endpoint with a secret or a certificate),
``mailbox`` (sendMail checks, the mailbox log, Sent Items listing), ``app`` (HTTP routes, bearer
tokens, injected Graph-shaped answers), ``server`` (MicrosoftSim).
"""
