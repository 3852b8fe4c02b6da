"""Survey links for the records in hand: one ``surveyLink`` request per record.

Why not REDCap's ``participantList``: it answers for every record in the project (2.4 MB at
10,000 records, and no answer within the timeout at 20,000), so a busy cycle would cost what the
project weighs, not what is due. A ``surveyLink`` answer is one URL (about 60 bytes), so the
cost of a cycle grows with the messages it sends and never with the registry
(``docs/PERFORMANCE.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

from common.errors import ConfigError, PermanentError, RedcapRejected, SurveyLinkError
from common.project import NOT_SURVEY_FIX, not_a_survey
from common.runner import Context
from messaging.rules import Rule, survey_setting


def survey_links(
    ctx: Context, rule: Rule, record_ids: Sequence[str]
) -> dict[str, str | PermanentError]:
    """Each record's survey link, or the error to record on it (REDCap refused, or not a URL).

    One request per distinct record id. Raises ConfigError when REDCap says the instrument is
    not a survey (the setting is wrong for every record), and a transient error when REDCap
    cannot be reached, as every other call does.
    """
    instrument = rule.survey
    found: dict[str, str | PermanentError] = {}
    for rid in dict.fromkeys(record_ids):
        try:
            link = ctx.redcap.survey_link(rid, instrument, ctx.layout.event_for(rule.event))
        except RedcapRejected as exc:
            if refusal := not_a_survey(str(exc), instrument, survey_setting(rule)):
                # The setting is wrong, not the record: stop before anything is claimed.
                raise ConfigError(f"{refusal}; {NOT_SURVEY_FIX}") from None
            found[rid] = SurveyLinkError("survey_link", f"REDCap gave no survey link: {exc}")
            continue
        if is_url(link):
            found[rid] = link
        else:
            found[rid] = SurveyLinkError(
                "survey_link", "REDCap's answer to the survey link request was not a URL"
            )
    return found


def is_url(text: str) -> bool:
    """An http(s) URL with no whitespace: what a survey link must look like to be texted."""
    return text.startswith(("https://", "http://")) and not any(ch.isspace() for ch in text)
