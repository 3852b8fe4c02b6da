"""{url:field:NAME}: a field's value URL-encoded to go in a link (a study ID in a booking
link), its mistakes refused in one line. Pure unit tests."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

import pytest

from messaging.templates import LocalizedTemplates, MessageTemplate

UTC = ZoneInfo("UTC")
BOOKING = "https://outlook.office.com/book/Visits@contoso.onmicrosoft.com/?StudyID="


def render(text: str, values: dict[str, str], escaped: bool = False) -> str:
    template = MessageTemplate.parse(text, link=False)
    return template.render(None, "7", values, "en", UTC, escape=escape if escaped else None)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("HC-3000", "HC-3000"),
        ("10200", "10200"),
        ("a b/c", "a%20b%2Fc"),
        ("7&next=https://evil.example/", "7%26next%3Dhttps%3A%2F%2Fevil.example%2F"),
        ("é", "%C3%A9"),
        (" 42 ", "42"),
        ("", ""),
    ],
)
def test_the_value_becomes_one_query_value(value: str, shown: str) -> None:
    """Letters, digits and -._~ stay; everything else is %-encoded (no value can end the
    parameter or add another); surrounding blanks go."""
    assert render(BOOKING + "{url:field:study_id}", {"study_id": value}) == BOOKING + shown


def test_in_html_the_encoded_value_needs_no_escaping_and_stays_as_it_is() -> None:
    """An e-mail's HTML escapes every value put in: an encoded one is unchanged by it."""
    text = '<a href="' + BOOKING + '{url:field:study_id}">Book</a>'
    html = render(text, {"study_id": '"><script>'}, escaped=True)
    assert html == '<a href="' + BOOKING + '%22%3E%3Cscript%3E">Book</a>'


def test_the_field_is_read_and_known_as_put_in_a_link() -> None:
    """The template reads the field (the sender exports it) and says it goes in a link."""
    template = LocalizedTemplates.build(
        "ID {field:study_id}: " + BOOKING + "{url:field:study_id}{url:field:site}", link=False
    )
    assert template.fields == ("study_id", "site")
    assert template.url_fields == ("study_id", "site")
    assert MessageTemplate.parse("ID {field:study_id}", link=False).url_fields == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{url:study_id}", "write {url:field:NAME}"),
        ("{url}", "write {url:field:NAME}"),
        ("{url:field:Study ID}", "write {url:field:NAME}"),
        ("{url:field:study_id:date}", "write {url:field:NAME}"),
        ("{urls:field:study_id}", "is not allowed"),
    ],
)
def test_a_wrong_url_placeholder_is_refused_in_one_line(text: str, says: str) -> None:
    """ValueError naming the placeholder and the way to write it."""
    with pytest.raises(ValueError, match="placeholder") as caught:
        MessageTemplate.parse(text, link=False)
    assert says in str(caught.value) and "\n" not in str(caught.value)
