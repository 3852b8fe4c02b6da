"""Message templates: placeholders and their errors, dates in the participant's language and zone,
language choice, SMS segment counts and the samples admin check prints. Pure unit tests."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest

from messaging.samples import SAMPLE_LINK, sample_values, samples
from messaging.segments import Segments, segments
from messaging.templates import LocalizedTemplates, MessageTemplate

CHICAGO = ZoneInfo("America/Chicago")
LINK = "https://redcap.example.org/surveys/?s=ABC"
# The 127 characters of the GSM 03.38 default alphabet (ESC left out), typed from the 3GPP table.
GSM_BASIC_BY_HAND = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def render(text: str, values: dict[str, str], locale: str = "en", *, link: bool = False) -> str:
    template = MessageTemplate.parse(text, link=link)
    return template.render(LINK if link else None, "7", values, locale, CHICAGO)


@pytest.mark.parametrize(
    "text",
    [
        "{survey_link}",
        "Hi {field:first_name} ({record_id}): {survey_link}",
        "{field:visit:date} {field:visit:date:short} {field:visit:date:full} {survey_link}",
        "{field:visit:time} {field:visit:time:long} {survey_link}",
        "{field:visit:datetime} {field:visit:datetime:medium} {survey_link}",
        "{field:visit:weekday} {survey_link}",
        "{{literal}} {survey_link}",
    ],
)
def test_valid_placeholders_parse(text: str) -> None:
    """Every documented placeholder form is accepted."""
    assert MessageTemplate.parse(text, link=True).link


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{link} {survey_link}", "{link}"),
        ("{survey_link} {}", "{}"),
        ("{survey_link} {0}", "{0}"),
        ("{survey_link!r}", "{survey_link!r}"),
        ("{survey_link:x}", "{survey_link:x}"),
        ("{survey_link} {record_id:04}", "{record_id:04}"),
        ("{survey_link} {field}", "{field}"),
        ("{survey_link} {field:Bad Name}", "{field:Bad Name}"),
        ("{survey_link} {field:1st}", "{field:1st}"),
        ("{survey_link} {field:visit:dat}", "{field:visit:dat}"),
        ("{survey_link} {field:visit:Date}", "{field:visit:Date}"),
        ("{survey_link} {field:visit:date:tiny}", "{field:visit:date:tiny}"),
        ("{survey_link} {field:visit:weekday:long}", "{field:visit:weekday:long}"),
        ("{survey_link} {field:visit:date:short:x}", "{field:visit:date:short:x}"),
        ("{survey_link} {field.visit}", "{field.visit}"),
    ],
)
def test_invalid_placeholder_is_named_in_one_line(text: str, named: str) -> None:
    """A wrong placeholder raises ValueError whose one line shows it as written."""
    with pytest.raises(ValueError, match="placeholder") as error:
        MessageTemplate.parse(text, link=True)
    assert named in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("{survey_link} {field:visit:dat}", "date, time, datetime or weekday"),
        ("{survey_link} {field:visit:date:tiny}", "short, medium, long or full"),
        ("{survey_link} {link}", "{field:NAME}"),
    ],
)
def test_errors_say_what_is_allowed(text: str, allowed: str) -> None:
    """The error lists the formats, widths or placeholders that would be accepted."""
    with pytest.raises(ValueError, match=allowed.replace("{", r"\{").replace("}", r"\}")):
        MessageTemplate.parse(text, link=True)


@pytest.mark.parametrize("text", ["{survey_link", "{survey_link} }", "", "   "])
def test_stray_braces_and_empty_text_are_refused(text: str) -> None:
    """A lone brace or an empty message is a one-line ValueError."""
    with pytest.raises(ValueError, match=r"brace|empty"):
        MessageTemplate.parse(text, link=True)


def test_too_long_text_is_refused() -> None:
    """A message longer than Twilio's 1600 characters is refused up front."""
    with pytest.raises(ValueError, match="1600"):
        MessageTemplate.parse("{survey_link} " + "x" * 1600, link=True)


def test_survey_link_required_when_the_rule_has_a_survey() -> None:
    """link=True: a message without {survey_link} is refused."""
    with pytest.raises(ValueError, match=r"must contain \{survey_link\}"):
        MessageTemplate.parse("Your visit is tomorrow", link=True)


def test_survey_link_refused_when_the_rule_has_none() -> None:
    """link=False: {survey_link} is refused with the fix; a message without it is fine."""
    with pytest.raises(ValueError, match=r"this rule has no survey; add survey = \.\.\. or remove"):
        MessageTemplate.parse("Go: {survey_link}", link=False)
    template = MessageTemplate.parse("Visit {field:visit:date}", link=False)
    assert not template.link
    assert template.render(None, "1", {"visit": "2026-03-03"}, "en", CHICAGO) == "Visit Mar 3, 2026"


def test_missing_link_at_render_is_a_programming_error() -> None:
    """Rendering a linked template without a link raises instead of texting no link."""
    template = MessageTemplate.parse("{survey_link}", link=True)
    with pytest.raises(ValueError, match="survey link"):
        template.render(None, "1", {}, "en", CHICAGO)


def test_literal_braces() -> None:
    """{{ and }} render as single braces and are not placeholders."""
    assert render("{{record_id}} is {record_id}", {}) == "{record_id} is 7"


def test_raw_values_link_and_record_id() -> None:
    """{field:NAME} is the exported value as is; a missing field is empty."""
    text = "Hi {field:first_name}{field:nick} ({record_id}): {survey_link}"
    assert render(text, {"first_name": "Ada"}, link=True) == f"Hi Ada (7): {LINK}"


def test_fields_and_date_fields_in_order_once() -> None:
    """.fields lists every variable once in order; .date_fields those with a date format."""
    template = MessageTemplate.parse(
        "{field:name} {field:visit:date} {field:name} {field:call:time} {field:visit:weekday}",
        link=False,
    )
    assert template.fields == ("name", "visit", "call")
    assert template.date_fields == ("visit", "call")
    assert template.time_fields == ("call",)


@pytest.mark.parametrize(
    ("placeholder", "en", "es", "fr"),
    [
        ("{field:d:date}", "Mar 3, 2026", "3 mar 2026", "3 mars 2026"),
        ("{field:d:date:short}", "3/3/26", "3/3/26", "03/03/2026"),
        ("{field:d:date:long}", "March 3, 2026", "3 de marzo de 2026", "3 mars 2026"),
        (
            "{field:d:date:full}",
            "Tuesday, March 3, 2026",
            "martes, 3 de marzo de 2026",
            "mardi 3 mars 2026",
        ),
        ("{field:d:weekday}", "Tuesday", "martes", "mardi"),
        ("{field:dt:time}", "2:30 PM", "14:30", "14:30"),
        ("{field:dt:time:medium}", "2:30:00 PM", "14:30:00", "14:30:00"),
        ("{field:dt:datetime}", "Mar 3, 2026, 2:30 PM", "3 mar 2026, 14:30", "3 mars 2026, 14:30"),
        ("{field:dt:date}", "Mar 3, 2026", "3 mar 2026", "3 mars 2026"),
    ],
)
def test_dates_in_english_spanish_french(placeholder: str, en: str, es: str, fr: str) -> None:
    """Dates and times follow the locale's CLDR patterns, as Babel formats them."""
    values = {"d": "2026-03-03", "dt": "2026-03-03 14:30"}
    assert [render(placeholder, values, loc) for loc in ("en", "es", "fr")] == [en, es, fr]


def test_times_use_plain_spaces() -> None:
    """CLDR's narrow no-break space before PM becomes a space, so English times stay GSM-7."""
    body = render("{field:dt:time}", {"dt": "2026-03-03 14:30"})
    assert body == "2:30 PM" and segments(body).encoding == "GSM-7"


def test_regional_locale() -> None:
    """A regional locale such as fr_CA uses its own patterns."""
    values = {"dt": "2026-03-03 14:30"}
    assert render("{field:dt:date:short} {field:dt:time}", values, "fr_CA") == "2026-03-03 14 h 30"


def test_datetime_is_read_in_the_study_zone() -> None:
    """A datetime is local to tz: no shift, and long times name that zone's offset that day."""
    values = {"winter": "2026-03-03 14:30:15", "summer": "2026-07-03 09:05"}
    text = "{field:winter:time:long} / {field:summer:time:long}"
    assert render(text, values) == "2:30:15 PM CST / 9:05:00 AM CDT"
    template = MessageTemplate.parse("{field:summer:time}", link=False)
    assert template.render(None, "1", values, "en", ZoneInfo("Europe/Paris")) == "9:05 AM"


@pytest.mark.parametrize(
    "value",
    ["", "   ", "soon", "03/03/2026", "2026-02-30", "2026-03-03 25:00", "2026-3-3", "2026-03-03T"],
)
def test_blank_or_bad_dates_render_empty(value: str) -> None:
    """A blank or unreadable date value renders as empty text, never an error."""
    text = "[{field:d:date}{field:d:time}{field:d:datetime}{field:d:weekday}]"
    assert render(text, {"d": value}) == "[]"


def test_time_of_a_date_only_value_is_empty() -> None:
    """{field:NAME:time} and :datetime on a date-only value render empty; :date still shows."""
    text = "[{field:d:time}|{field:d:datetime}|{field:d:date}]"
    assert render(text, {"d": "2026-03-03"}) == "[||Mar 3, 2026]"


def test_one_string_is_one_language() -> None:
    """template = "..." gives one template, in the given default locale (en unless told)."""
    templates = LocalizedTemplates.build("Hi {survey_link}", link=True)
    assert list(templates.templates) == ["en"] and templates.default == "en"
    assert templates.choose({})[0] == "en" and templates.language_fields == ()
    spanish = LocalizedTemplates.build("Hola {survey_link}", link=True, locale="es")
    assert spanish.default == "es"


def languages() -> LocalizedTemplates:
    return LocalizedTemplates.build(
        {"en": "Visit {field:v:date} {survey_link}", "es": "Cita {field:v:date} {survey_link}"},
        link=True,
        language_field="lang",
        languages={"1": "en", "2": "es"},
    )


def test_language_field_chooses_the_template() -> None:
    """The participant's code picks the locale and its template."""
    templates = languages()
    locale, template = templates.choose({"lang": "2"})
    assert locale == "es" and template.text.startswith("Cita")
    body = templates.render(LINK, "1", {"lang": " 2 ", "v": "2026-03-03"}, CHICAGO)
    assert body == f"Cita 3 mar 2026 {LINK}"
    assert templates.fields == ("v",) and templates.language_fields == ("lang",)


@pytest.mark.parametrize("values", [{}, {"lang": ""}, {"lang": "9"}, {"lang": "es"}])
def test_blank_or_unmapped_code_falls_back_to_the_first(values: dict[str, str]) -> None:
    """No code, or one the mapping lacks, gives the default (first) locale."""
    assert languages().choose(values)[0] == "en"


@pytest.mark.parametrize(
    ("spec", "field", "codes", "named"),
    [
        ({}, "", {}, "no languages"),
        ({"xx": "{survey_link}"}, "", {}, "'xx' is not a locale"),
        ({"english": "{survey_link}"}, "", {}, "'english' is not a locale"),
        ({"fr-CA": "{survey_link}"}, "", {}, "as fr_CA"),
        ({"EN": "{survey_link}"}, "", {}, "as en"),
        ({"en": 3}, "", {}, "template.en must be text"),
        ({"en": "{survey_link}", "es": "no link"}, "lang", {"2": "es"}, "template.es:"),
        ({"en": "{survey_link}"}, "lang", {"1": "en", "2": "es"}, "template has no es text"),
        ({"en": "{survey_link}"}, "lang", {"1": "zz"}, "'zz' is not a locale"),
        ({"en": "{survey_link}"}, "lang", {"1": 1}, 'code "1" must map to a locale'),
        ({"en": "{survey_link}"}, "lang", {}, "needs languages"),
        ({"en": "{survey_link}"}, "", {"1": "en"}, "needs language_field"),
        ({"en": "{survey_link}"}, "Lang", {"1": "en"}, "not a REDCap variable name"),
        ({"en": "{survey_link}", "es": "{survey_link}"}, "", {}, "nothing chooses"),
        ({"en": "{survey_link}", "es": "{survey_link}"}, "lang", {"1": "en"}, "es is never"),
    ],
)
def test_language_errors_name_the_locale_or_code(
    spec: dict[str, object], field: str, codes: dict[str, object], named: str
) -> None:
    """Bad locales, codes or language settings raise a one-line ValueError naming them."""
    with pytest.raises(ValueError, match=re.escape(named)) as error:
        LocalizedTemplates.build(spec, link=True, language_field=field, languages=codes)
    assert "\n" not in str(error.value)


def test_unknown_locale_at_render_is_a_value_error() -> None:
    """A locale Babel lacks is a ValueError, not a Babel exception."""
    with pytest.raises(ValueError, match="not a locale"):
        render("{field:d:date}", {"d": "2026-03-03"}, "xx")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", Segments("GSM-7", 0, 0)),
        ("a" * 160, Segments("GSM-7", 1, 160)),
        ("a" * 161, Segments("GSM-7", 2, 161)),
        ("a" * 306, Segments("GSM-7", 2, 306)),
        ("a" * 307, Segments("GSM-7", 3, 307)),
        ("€" * 80, Segments("GSM-7", 1, 160)),
        ("€" * 81, Segments("GSM-7", 2, 162)),
        ("^{}\\[~]|€\f", Segments("GSM-7", 1, 20)),
        (GSM_BASIC_BY_HAND, Segments("GSM-7", 1, 127)),
        ("a" * 70 + "ç", Segments("UCS-2", 2, 71)),
        ("ç" * 70, Segments("UCS-2", 1, 70)),
        ("ç" * 71, Segments("UCS-2", 2, 71)),
        ("ç" * 134, Segments("UCS-2", 2, 134)),
        ("ç" * 135, Segments("UCS-2", 3, 135)),
        ("😀" * 35, Segments("UCS-2", 1, 70)),
        ("😀", Segments("UCS-2", 1, 2)),
    ],
)
def test_segments(body: str, expected: Segments) -> None:
    """GSM-7 160/153 septets (extension characters 2), else UCS-2 70/67 UTF-16 units."""
    assert segments(body) == expected


def test_two_unit_characters_are_never_split_across_segments() -> None:
    """An ESC pair or surrogate pair that does not fit in a part starts the next one."""
    assert segments("a" * 152 + "€" + "a" * 151).count == 2  # 152 | 2 + 151
    assert segments("a" * 152 + "€" + "a" * 152).count == 3  # 152 | 154 > 153
    assert segments("ç" * 66 + "😀" + "ç" * 66).count == 3  # 66 | 2 + 65 | 1


def test_sample_values() -> None:
    """Date fields get a sample date-time, other fields "Sample"; the link is 60 characters."""
    template = MessageTemplate.parse("{field:name} {field:visit:weekday} {survey_link}", link=True)
    assert sample_values(template) == {"name": "Sample", "visit": "2026-03-03 14:30"}
    assert len(SAMPLE_LINK) == 60


def test_samples_per_language_with_warning_above_three_segments() -> None:
    """Each locale is rendered with typical values; more than 3 segments sets the warning."""
    templates = LocalizedTemplates.build(
        {
            "en": "Hi {field:name}, visit {field:v:datetime}: {survey_link}",
            "es": "Hola {field:name}, cita el {field:v:weekday} " + "ñ" * 420 + " {survey_link}",
        },
        link=True,
        language_field="lang",
        languages={"1": "en", "2": "es"},
    )
    english, spanish = samples(templates, CHICAGO)
    assert english.locale == "en"
    assert english.body == f"Hi Sample, visit Mar 3, 2026, 2:30 PM: {SAMPLE_LINK}"
    assert english.length == len(english.body) == 99
    assert english.segments == Segments("GSM-7", 1, 99) and not english.warning
    assert spanish.locale == "es" and spanish.segments.count == 4 and spanish.warning
    just_three = LocalizedTemplates.build("x" * (3 * 153 - 61) + " {survey_link}", link=True)
    (three,) = samples(just_three, CHICAGO)
    assert three.segments == Segments("GSM-7", 3, 459) and not three.warning


def test_samples_without_a_survey() -> None:
    """A rule without a survey is sampled without a link."""
    (sample,) = samples(LocalizedTemplates.build("Visit {field:v:date}", link=False), CHICAGO)
    assert sample.body == "Visit Mar 3, 2026"
