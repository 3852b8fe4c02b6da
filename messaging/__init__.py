"""How a message is sent: rules, their timing, and the claim -> send -> record -> reconcile path.

``common/`` holds what every service shares (settings, errors, the REDCap and Twilio adapters,
the runner); ``services/`` holds thin mains. Everything that decides *who gets which message when*,
and sends it exactly once, lives here.
"""
