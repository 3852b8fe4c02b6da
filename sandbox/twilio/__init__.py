"""Local simulator of Twilio's Messages API (2010-04-01); start it with ``server.TwilioSim``.

Modules: ``numbers`` (magic numbers and outcomes), ``segments`` (num_segments), ``lifecycle``
(status steps over simulated time), ``validation`` (create checks), ``message`` (JSON and webhook
shapes), ``messages`` (the store), ``listing`` (filters and paging), ``callbacks`` (signed
webhooks), ``app`` (HTTP, auth, errors), ``arrivals`` (real arrival times of creates),
``server`` (TwilioSim), ``control`` (the endpoint that makes a participant text us),
``client`` (SDK helper).
"""
