"""What ``admin check`` can see of the go-live checklist (docs/go-live.md): the kind of number
that sends (and what the carriers require of it), a consent term in every rule's ``when`` when
``CONSENT_FIELD`` is set, and reply words Twilio may answer itself.

The rest of the checklist (a registered A2P 10DLC campaign, a verified toll-free number, a
Twilio BAA, the first message's opt-out words) lives in Twilio's console and the study's
paperwork, out of reach of a settings check: the lines here say where to look.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import phonenumbers

from common.project import Check
from common.settings import Settings
from messaging.rules import Rules

GO_LIVE = "docs/go-live.md"
TEST_NUMBER = "+15005550006"  # Twilio's test credentials' sender, and the sandbox's
# Twilio's own opt-in keywords (docs/replies.md): START and UNSTOP are refused as reply words,
# YES is allowed (it is what most studies ask for), though Twilio answers it too.
TWILIO_OPT_IN = frozenset({"yes"})


def sender(settings: Settings) -> Check:
    """The sender as the carriers see it: a Messaging Service, a toll-free number or a local
    one, and the registration each needs before US texts arrive."""
    if settings.twilio_messaging_service_sid:
        return Check(
            "Twilio sender",
            True,
            f"Messaging Service {settings.twilio_messaging_service_sid[:6]}...: Twilio picks the "
            "number from its pool; US local numbers there need an approved A2P 10DLC campaign "
            f"(else error 30034), toll-free ones toll-free verification (else 30032); {GO_LIVE}",
        )
    number = settings.twilio_from_number
    if number == TEST_NUMBER:
        return Check("Twilio sender", True, f"{number}: Twilio's test number (nothing is sent)")
    parsed = phonenumbers.parse(number, None)
    region = phonenumbers.region_code_for_number(parsed) or "?"
    kind = phonenumbers.number_type(parsed)
    if parsed.country_code != 1:
        detail = (
            f"a number of {region}: check the sender rules for your participants' countries in "
            "Twilio's console (some need a registered sender or an alphanumeric sender ID)"
        )
    elif kind == phonenumbers.PhoneNumberType.TOLL_FREE:
        detail = (
            "a US/Canada toll-free number: it texts US and Canadian phones only once toll-free "
            "verification is approved (else error 30032)"
        )
    else:
        detail = (
            "a US/Canada local number (10DLC): it texts US phones only from a Messaging Service "
            "with an approved A2P 10DLC brand and campaign (else undelivered, error 30034)"
        )
    return Check("Twilio sender", True, f"{number}, {detail}; {GO_LIVE}")


def consent(
    settings: Settings, rules: Rules, metadata: Mapping[str, Mapping[str, str]] | None
) -> list[Check]:
    """With CONSENT_FIELD set, a ``[warn]`` for each rule whose ``when`` does not test it (it
    would message whoever registers, consented or not), and for a field the project lacks."""
    name = settings.consent_field
    if not name:
        return []
    if metadata is not None and name not in metadata:
        return [
            Check(
                "consent",
                True,
                f"CONSENT_FIELD={name!r} is not a field of this project; set it to the field "
                "recording consent to be texted",
                warning=True,
            )
        ]
    term = re.compile(r"\[" + re.escape(name) + r"\]")
    checks = []
    for rule in rules.written:
        if term.search(rule.when):
            checks.append(Check("consent", True, f"rule {rule.name}: its when tests [{name}]"))
            continue
        fix = (
            "use a RULES_FILE whose rules' when test it"
            if rule.builtin
            else f"add \"and [{name}] = '1'\" (the code meaning yes) to its when"
        )
        checks.append(
            Check(
                "consent",
                True,
                f"rule {rule.name}: its when does not test [{name}], so it messages people who "
                f"have not consented; {fix}",
                warning=True,
            )
        )
    return checks


def reply_words(settings: Settings, rules: Rules) -> list[Check]:
    """Reply words Twilio may handle as keywords before the reply poller reads them: its own
    opt-in words, and with a Messaging Service whatever Advanced Opt-Out was configured with."""
    checks = []
    for rule in rules.replying:
        replies = rule.replies
        assert replies is not None  # rules.replying are the rules with replies
        said = [word for word in replies.words if word in TWILIO_OPT_IN]
        notes = [
            f"{word!r} is also Twilio's opt-in keyword: Twilio answers it with its own opt-in "
            "text beside the auto-answer, and from someone who texted STOP it re-subscribes "
            f"them (recorded as opted_in, not {replies.words[word]}); docs/replies.md says how "
            "to avoid it"
            for word in said
        ]
        if settings.twilio_messaging_service_sid:
            notes.append(
                "with Advanced Opt-Out on the Messaging Service, Twilio handles the keywords "
                "configured there itself (in every language set up): make sure none of "
                f"{', '.join(replies.words)} is one"
            )
        if notes:
            checks.append(
                Check("reply words", True, f"rule {rule.name}: {'; '.join(notes)}", warning=True)
            )
    return checks
